"""Independent float64 references: every rule written as matrix algebra on explicit Jacobians.

A linear-type layer (Linear, convolutions) acting on one sample is f(x; θ) = J(θ) x + b(θ), with
J(θ) the Jacobian built by ``torch.autograd.functional.jacobian`` of a *copy* of the layer whose
parameters were set to the modified values by hand, and b(θ) = f(0; θ). No hook, ParamMod or
rule code is used here. Inputs and relevances are per-sample vectors; a batch is a loop.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch

ParamFn = Callable[[str, torch.Tensor], torch.Tensor]


def stab(z: torch.Tensor, epsilon: float = 1e-6) -> torch.Tensor:
    """z + ε·s with s = +1 where z ≥ 0 and −1 where z < 0."""
    return z + epsilon * torch.where(z >= 0, 1.0, -1.0).to(z)


def modified(layer: torch.nn.Module, fn: ParamFn | None) -> torch.nn.Module:
    """A copy of ``layer`` whose parameters are replaced by ``fn(name, param)``."""
    layer = copy.deepcopy(layer)
    if fn is not None:
        with torch.no_grad():
            for name, param in layer.named_parameters():
                param.copy_(fn(name, param))
    return layer


def affine(layer: torch.nn.Module, in_shape: tuple, fn: ParamFn | None = None):
    """(J, b) of the single-sample affine map x ↦ f(x; θ') with θ' = fn(θ): f(x) = J x + b.

    Column i of J is f(e_i) − f(0) for the i-th unit vector e_i (exact for affine layers).
    """
    layer = modified(layer, fn)
    size = math.prod(in_shape)
    with torch.no_grad():
        bias = layer(torch.zeros(1, *in_shape, dtype=torch.float64)).reshape(-1)
        basis = torch.eye(size, dtype=torch.float64).reshape(size, *in_shape)
        columns = layer(basis).reshape(size, -1) - bias
    return columns.T, bias


def plus(name, p):
    return p.clamp(min=0)


def minus(name, p):
    return p.clamp(max=0)


def no_bias(fn: ParamFn | None) -> ParamFn:
    """``fn`` with the bias replaced by zeros."""
    return lambda name, p: (
        torch.zeros_like(p) if name == "bias" else (p if fn is None else fn(name, p))
    )


def per_sample(layer, x: torch.Tensor, relevance: torch.Tensor, formula) -> torch.Tensor:
    """Apply ``formula(layer, in_shape, x_flat, r_flat)`` to every sample of a batch."""
    in_shape = tuple(x.shape[1:])
    rows = [
        formula(layer, in_shape, xi.reshape(-1), ri.reshape(-1))
        for xi, ri in zip(x, relevance, strict=False)
    ]
    return torch.stack(rows).reshape(x.shape)


def epsilon(layer, in_shape, x, r, eps=1e-6):
    """R_in = x ⊙ Jᵀ(R / stab(Jx + b, ε))."""
    jac, b = affine(layer, in_shape)
    return x * (jac.T @ (r / stab(jac @ x + b, eps)))


def zplus(layer, in_shape, x, r):
    """z = J⁺x⁺ + b⁺ + J⁻x⁻; R_in = x⁺⊙J⁺ᵀ(R/stab z) + x⁻⊙J⁻ᵀ(R/stab z)."""
    jp, bp = affine(layer, in_shape, plus)
    jn, _ = affine(layer, in_shape, no_bias(minus))
    xp, xn = x.clamp(min=0), x.clamp(max=0)
    c = r / stab(jp @ xp + bp + jn @ xn)
    return xp * (jp.T @ c) + xn * (jn.T @ c)


def alpha_beta(layer, in_shape, x, r, alpha=2.0, beta=1.0):
    """z_p = J⁺x⁺ + b⁺ + J⁻x⁻, z_n = J⁻x⁺ + b⁻ + J⁺x⁻ (x⁻ parts without bias);
    R_in = α(x⁺⊙J⁺ᵀc_p + x⁻⊙J⁻ᵀc_p) − β(x⁺⊙J⁻ᵀc_n + x⁻⊙J⁺ᵀc_n), c = R/stab(z)."""
    jp, bp = affine(layer, in_shape, plus)
    jn, bn = affine(layer, in_shape, minus)
    xp, xn = x.clamp(min=0), x.clamp(max=0)
    cp = r / stab(jp @ xp + bp + jn @ xn)
    cn = r / stab(jn @ xp + bn + jp @ xn)
    return alpha * (xp * (jp.T @ cp) + xn * (jn.T @ cp)) - beta * (
        xp * (jn.T @ cn) + xn * (jp.T @ cn)
    )


def gamma(layer, in_shape, x, r, g=0.25):
    """G⁺θ = θ + γθ⁺, G⁻θ = θ + γθ⁻, z = Jx + b;
    z_p = J(G⁺)x⁺ + b(G⁺) + J(G⁻)x⁻, z_n = J(G⁻)x⁺ + b(G⁻) + J(G⁺)x⁻;
    c_p = R[z>0]/stab(z_p), c_n = R[z<0]/stab(z_n);
    R_in = x⁺⊙(J(G⁺)ᵀc_p + J(G⁻)ᵀc_n) + x⁻⊙(J(G⁻)ᵀc_p + J(G⁺)ᵀc_n)."""
    jac, b = affine(layer, in_shape)
    ju, bu = affine(layer, in_shape, lambda n, p: p + g * p.clamp(min=0))
    jd, bd = affine(layer, in_shape, lambda n, p: p + g * p.clamp(max=0))
    xp, xn = x.clamp(min=0), x.clamp(max=0)
    z = jac @ x + b
    cp = r * (z > 0) / stab(ju @ xp + bu + jd @ xn)
    cn = r * (z < 0) / stab(jd @ xp + bd + ju @ xn)
    return xp * (ju.T @ cp + jd.T @ cn) + xn * (jd.T @ cp + ju.T @ cn)


def zbox(layer, in_shape, x, r, low, high):
    """z = Jx + b − (J⁺l + b⁺) − (J⁻h + b⁻); R_in = x⊙Jᵀc − l⊙J⁺ᵀc − h⊙J⁻ᵀc, c = R/stab(z)."""
    jac, b = affine(layer, in_shape)
    jp, bp = affine(layer, in_shape, plus)
    jn, bn = affine(layer, in_shape, minus)
    c = r / stab(jac @ x + b - (jp @ low + bp) - (jn @ high + bn))
    return x * (jac.T @ c) - low * (jp.T @ c) - high * (jn.T @ c)


def flat(layer, in_shape, x, r):
    """J₁ = J(θ=1), no bias; R_in = J₁ᵀ(R / stab(J₁·1))."""
    j1, _ = affine(layer, in_shape, no_bias(lambda n, p: torch.ones_like(p)))
    return j1.T @ (r / stab(j1 @ torch.ones_like(x)))


def wsquare(layer, in_shape, x, r):
    """J₂ = J(θ²), b₂ = b(θ²); R_in = J₂ᵀ(R / stab(J₂·1 + b₂))."""
    j2, b2 = affine(layer, in_shape, lambda n, p: p * p)
    return j2.T @ (r / stab(j2 @ torch.ones_like(x) + b2))
