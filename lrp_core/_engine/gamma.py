"""Exact shortcut of the Gamma rule on linear-type modules (Linear, convolutions).

The rule's relevance splits into a z_p part (where z = f(x; θ) > 0) and a z_n part (z < 0):

    R_in = x⁺⊙J(G⁺)ᵀc_p + x⁻⊙J(G⁻)ᵀc_p + x⁺⊙J(G⁻)ᵀc_n + x⁻⊙J(G⁺)ᵀc_n,
    c_p = R·[z>0] / stab(z_p),  c_n = R·[z<0] / stab(z_n).

A part whose masked relevance is all zero contributes exactly zero, and an x⁻ term with x⁻ = 0 and
no bias does too; so only the passes that can contribute run. After a ReLU (x ≥ 0) whose relevance
comes from a rule weighted by its input (R = 0 wherever z ≤ 0) this is one modified forward and one
VJP. Only the sign of z is kept from the forward pass (two bits per element, ``pack_sign``), and
large layers are processed in slices of output channels (``lrp_core._engine.chunks``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .chunks import output_chunks, output_slice, sliced
from .module_call import ModuleCall
from .relevance import owned, pointers

if TYPE_CHECKING:
    from .protocols import GammaRule


_SHIFTS = (0, 2, 4, 6)


def pack_sign(z: torch.Tensor) -> tuple[torch.Tensor, torch.Size]:
    """sign(z) in two bits per element (1: z > 0, 2: z < 0, 0: z = 0 or NaN), four per byte."""
    codes = (z > 0).to(torch.uint8)
    codes.add_((z < 0).to(torch.uint8), alpha=2)
    flat = codes.reshape(-1)
    padding = (-flat.numel()) % 4
    if padding:
        flat = torch.cat([flat, flat.new_zeros(padding)])
    flat = flat.reshape(-1, 4)
    packed = flat[:, 0].clone()
    for column, shift in enumerate(_SHIFTS[1:], start=1):
        packed.bitwise_or_(flat[:, column] << shift)
    return packed, z.shape


def unpack_sign(packed: tuple[torch.Tensor, torch.Size]) -> torch.Tensor:
    """The int8 tensor of signs (+1, −1, 0) that ``pack_sign`` stored."""
    data, shape = packed
    shifts = torch.tensor(_SHIFTS, dtype=torch.uint8, device=data.device)
    codes = (data.unsqueeze(1) >> shifts).bitwise_and_(3).reshape(-1)[: shape.numel()]
    sign = (codes == 1).to(torch.int8)
    sign.sub_((codes == 2).to(torch.int8))
    return sign.reshape(shape)


def _pair_relevance(rule: GammaRule, call: ModuleCall, parts: list, relevance, chunk):
    """Σ_parts x_part ⊙ J(θ_part)ᵀ c with c = relevance / stab(Σ_parts f(x_part; θ_part))."""
    leaves, outputs = [], []
    with torch.enable_grad():
        for part, param_mod in parts:
            leaf = part.detach().requires_grad_()
            with sliced(call.module, chunk), param_mod(call.module):
                (output,) = call.rerun([leaf])
            leaves.append(leaf)
            outputs.append(output)
    with torch.no_grad():
        z = outputs[0].detach() if len(outputs) == 1 else outputs[0].detach() + outputs[1].detach()
        gradient = relevance / rule._stabilize(z)
    del z
    grads = torch.autograd.grad(outputs, leaves, [gradient] * len(outputs))
    del outputs, gradient
    with torch.no_grad():
        result = _times(grads[0], parts[0][0], relevance)
        if len(grads) == 2:
            result = result.add_(_times(grads[1], parts[1][0], relevance))
    return result


def _times(grad: torch.Tensor, x: torch.Tensor, relevance: torch.Tensor) -> torch.Tensor:
    return grad.mul_(x) if owned(grad, pointers((relevance,))) else grad * x


def gamma_relevance(rule: GammaRule, call: ModuleCall, grad_output: torch.Tensor) -> tuple:
    """Relevance of the Gamma rule for one call of a linear-type module (single input/output)."""
    call.check_inputs_unchanged()
    (x,) = call.inputs
    up, down_nb, down, up_nb = rule.param_modifiers[:4]
    positive, negative = x, None
    if x.numel() > 0 and bool(x.min() < 0):
        positive, negative = x.clamp(min=0), x.clamp(max=0)
    chunks = output_chunks(call.module, x.numel() * x.element_size()) or [None]
    full_sign = unpack_sign(call.kept)
    result = None
    for chunk in chunks:
        sign = output_slice(full_sign, call.module, chunk)
        grad = output_slice(grad_output, call.module, chunk)
        for mask_value, first, second in ((1, up, down_nb), (-1, down, up_nb)):
            relevance = grad * (sign == mask_value)
            if not bool(relevance.any()):
                continue
            parts = [(positive, first)]
            if negative is not None:
                parts.append((negative, second))
            part = _pair_relevance(rule, call, parts, relevance, chunk)
            result = part if result is None else result.add_(part)
    if result is None:
        result = torch.zeros_like(x)
    return (result,)
