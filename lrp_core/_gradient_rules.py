"""Rules computed from the incoming gradient (and the input where stated): Pass, ReLU rules.

Part of ``lrp_core.rules`` (which re-exports every class here), kept apart for its length. It
lives beside ``rules`` rather than in ``lrp_core._engine`` because its rules subclass
``lrp_core.core.Hook``, and the engine must not depend on ``core`` (which is built on it).
"""

from __future__ import annotations

import torch

from ._engine import ModuleCall, RuleBase, check_number
from .core import Hook


class _GradientRule(RuleBase, Hook):
    """A Hook rule computed from the incoming gradient (and the stored input if ``_uses_input``)."""

    _uses_input = False

    def __init__(self):
        Hook.__init__(self)

    def _needs_local_graph(self, module: torch.nn.Module) -> bool:
        return False

    def _keep(self, call: ModuleCall, outputs: list[torch.Tensor]) -> None:
        if len(outputs) != len(call.inputs) or any(
            o.shape != x.shape for o, x in zip(outputs, call.inputs, strict=False)
        ):
            raise RuntimeError(
                f"{type(self).__name__} needs a module whose outputs have the shapes of its "
                f"inputs, but {type(call.module).__name__} maps "
                f"{[tuple(x.shape) for x in call.inputs]} to {[tuple(o.shape) for o in outputs]}."
            )
        if not self._uses_input:
            call.inputs = call.originals = None

    def _relevance(self, call: ModuleCall, grad_outputs: tuple) -> tuple:
        self.stored_tensors = call.stored
        self.pre_backward(call.module, grad_outputs, grad_outputs)
        if not self._uses_input:
            inputs = [None] * len(grad_outputs)
        elif torch.is_grad_enabled():  # building a higher-order graph: stay connected to x
            inputs = call.originals
        else:
            inputs = call.inputs
        return tuple(self._map(x, g) for x, g in zip(inputs, grad_outputs, strict=False))


class Pass(_GradientRule):
    """R_in = R: the relevance passes unchanged (for modules whose output has the input's shape)."""

    def _map(self, x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        return grad


class ReLUDeconvNet(_GradientRule):
    """R_in = max(R, 0)."""

    def _map(self, x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        return grad.clamp(min=0)


class ReLUBetaSmooth(_GradientRule):
    """R_in = sigmoid(β·x) ⊙ R: the gradient of a softplus with sharpness β."""

    _hyperparameters = ("beta_smooth",)
    _uses_input = True

    def __init__(self, beta_smooth: float = 10.0):
        super().__init__()
        self.beta_smooth = check_number(beta_smooth, "beta_smooth", strict=True)

    def _map(self, x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.beta_smooth * x) * grad


class ReLUGuidedBackprop(RuleBase, Hook):
    """R_in = grad_input ⊙ [R > 0] (the true gradient, kept only where the incoming one is > 0)."""

    def backward(self, module, grad_input, grad_output):
        return tuple(g * (r > 0) for g, r in zip(grad_input, grad_output, strict=False))
