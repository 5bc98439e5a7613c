"""Autograd functions that carry the rules of captured operations in the gradient × input form.

Inside a captured region the backward pass carries a *modified gradient* ``g``; the relevance of
any tensor ``x`` is ``R = x ⊙ g``. A rule is then a change of ``g`` at one operation:

- ``scale_gradient(x, c)``: forward ``x``, backward ``c · g`` (uniform splits: ``c = 1/2``);
- ``epsilon_gradient(y, ε)``: forward ``y``, backward ``g ⊙ y / (y + ε·sign(y))`` (the epsilon
  rule after a linear map: ``R/(z + ε)`` in place of ``R/z``);
- ``identity_gradient(x, y)``: forward ``y`` (computed from a detached ``x``), backward
  ``g ⊙ y / x`` (0 where ``x = 0``), so that ``R_x = R_y`` element-wise (identity rule);
- ``normalized_gradient(...)``: a norm with its standard deviation held constant;
- ``to_relevance`` / ``from_relevance``: the change of signal between relevance (what the rest of
  the engine and the attributors carry) and the modified gradient.
"""

from __future__ import annotations

import torch


def _safe_divide(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """``numerator / denominator``, 0 where the denominator is 0."""
    zero = denominator == 0
    return (numerator / denominator.masked_fill(zero, 1)).masked_fill_(zero, 0)


class _ScaleGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input: torch.Tensor, factor: float) -> torch.Tensor:
        ctx.factor = factor
        return input.view_as(input)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad * ctx.factor, None


def scale_gradient(input: torch.Tensor, factor: float) -> torch.Tensor:
    """``input`` unchanged; its gradient multiplied by ``factor`` in the backward pass."""
    if factor == 1:
        return input
    return _ScaleGradient.apply(input, factor)


class _EpsilonGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, output: torch.Tensor, epsilon: float) -> torch.Tensor:
        # the output itself is kept (no copy); the factor is made in the backward pass
        ctx.save_for_backward(output.detach())
        ctx.epsilon = epsilon
        return output.view_as(output)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (output,) = ctx.saved_tensors
        # y / (y + ε·sign(y)) = |y| / (|y| + ε) for every y (sign(0) = 1; ε > 0)
        factor = output.abs()
        return grad * factor.div_(factor + ctx.epsilon), None


def epsilon_gradient(output: torch.Tensor, epsilon: float) -> torch.Tensor:
    """``output`` unchanged; backward ``g ⊙ y / (y + ε·sign(y))`` (sign(0) = 1)."""
    if epsilon == 0:
        return output
    return _EpsilonGradient.apply(output, epsilon)


class _IdentityGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        # both are kept as they are (the model's own gradient keeps them too), the ratio is made
        # in the backward pass
        ctx.save_for_backward(input.detach(), output.detach())
        return output.detach().view_as(output)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        input, output = ctx.saved_tensors
        return grad * _safe_divide(output, input), None


def identity_gradient(input: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    """``output`` (an element-wise function of ``input``, same shape) joined to ``input`` so that
    the backward passes ``g ⊙ output / input``: the relevance of each element is passed on."""
    return _IdentityGradient.apply(input, output)


class _NormalizedGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, output, rstd, weight, n_dims: int, centered: bool):
        ctx.save_for_backward(rstd, weight)
        ctx.n_dims, ctx.centered = n_dims, centered
        return output.detach().view_as(output)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        rstd, weight = ctx.saved_tensors
        grad_in = grad * rstd if weight is None else grad * weight * rstd
        if ctx.centered:
            dims = tuple(range(-ctx.n_dims, 0))
            grad_in = grad_in - grad_in.mean(dim=dims, keepdim=True)
        return grad_in, None, None, None, None, None


def normalized_gradient(
    input: torch.Tensor,
    output: torch.Tensor,
    rstd: torch.Tensor,
    weight: torch.Tensor | None,
    n_dims: int,
    centered: bool,
) -> torch.Tensor:
    """``output`` of a norm over the last ``n_dims`` axes, joined to ``input`` as the linear map
    ``x ↦ weight ⊙ (x − μ(x)) ⊙ rstd`` (``μ`` only if ``centered``) with the reciprocal standard
    deviation ``rstd`` held constant (identity rule on the division by σ)."""
    return _NormalizedGradient.apply(input, output, rstd, weight, n_dims, centered)


class _ToRelevance(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(input.detach())
        return input.view_as(input)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (input,) = ctx.saved_tensors
        # masked (-inf) entries, e.g. attention scores, keep zero relevance
        return torch.where(torch.isfinite(input), input * grad, 0)


def to_relevance(input: torch.Tensor) -> torch.Tensor:
    """Backward: the modified gradient ``g`` arriving here leaves as relevance ``input ⊙ g`` (0
    where ``input`` is not finite, as at masked attention scores)."""
    return _ToRelevance.apply(input)


class _FromRelevance(torch.autograd.Function):
    @staticmethod
    def forward(ctx, output: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(output.detach())
        return output.view_as(output)

    @staticmethod
    def backward(ctx, relevance: torch.Tensor):
        (output,) = ctx.saved_tensors
        return relevance / torch.where(output == 0, torch.ones_like(output), output)


def from_relevance(output: torch.Tensor) -> torch.Tensor:
    """Backward: relevance ``R`` arriving here leaves as the modified gradient ``R / output``
    (``R`` itself where the output is 0)."""
    return _FromRelevance.apply(output)
