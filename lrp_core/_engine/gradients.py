"""The true gradient of a hooked module: the plain path, and the path through a relevance graph.

``true_gradient`` is what a ``Hook`` without a rule passes on; ``second_order_gradient`` is what
the autograd node of a hooked module returns when a relevance graph built with
``create_graph=True`` is differentiated again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .module_call import ModuleCall


def true_gradient(call: ModuleCall, grad_outputs: tuple[torch.Tensor, ...]) -> tuple:
    """Gradient of the module's outputs with respect to its hooked inputs, given ``grad_outputs``.

    Uses the local graph of the forward; while building a higher-order graph (grad mode on in the
    backward pass) it re-runs the module on the original inputs so the result stays connected.
    """
    create_graph = torch.is_grad_enabled()
    if create_graph:
        inputs = list(call.originals)
        outputs = call.rerun(inputs)
    else:
        inputs, outputs = call.leaves, call.outputs
    pairs = [(o, g) for o, g in zip(outputs, grad_outputs, strict=True) if o.requires_grad]
    if not pairs:
        return tuple(torch.zeros_like(x) for x in inputs)
    grads = torch.autograd.grad(
        [o for o, _ in pairs],
        inputs,
        [g for _, g in pairs],
        retain_graph=True,
        create_graph=create_graph,
        allow_unused=True,
    )
    return tuple(
        torch.zeros_like(x) if g is None else g for x, g in zip(inputs, grads, strict=True)
    )


def second_order_gradient(call: ModuleCall, grad_outputs: tuple[torch.Tensor, ...]) -> tuple:
    """True VJP of the call's module, used when a relevance graph is differentiated.

    Hooks that keep no input (``Pass``, ``ReLUDeconvNet``) pass the gradient on unchanged.
    """
    if call.inputs is None:
        return grad_outputs
    if torch.is_grad_enabled() or call.leaves is None:
        leaves = [x.detach().requires_grad_() for x in call.inputs]
        with torch.enable_grad():
            outputs = call.rerun(leaves)
        pairs = [(o, g) for o, g in zip(outputs, grad_outputs, strict=True) if o.requires_grad]
        if not pairs:
            return tuple(torch.zeros_like(x) for x in call.inputs)
        grads = torch.autograd.grad(
            [o for o, _ in pairs], leaves, [g for _, g in pairs], allow_unused=True
        )
        return tuple(
            torch.zeros_like(x) if g is None else g for x, g in zip(leaves, grads, strict=False)
        )
    return true_gradient(call, grad_outputs)
