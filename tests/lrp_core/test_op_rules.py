"""Each op rule against its formula, computed directly in float64 on small tensors.

The rules run inside an ``OpComposite`` with ``signal="relevance"`` on a module whose forward is
the one operation, so the relevance at the module input is exactly the rule's ``R_in``; the
reference below each test is the formula of the rule's docstring, written out independently.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lrp_core.attention_rules import AttentionCP, AttentionUniform
from lrp_core.attribution import Gradient
from lrp_core.op_composites import OpComposite
from lrp_core.op_rules import (
    ActivationIdentity,
    BilinearUniform,
    ElementwiseIdentity,
    LinearEpsilon,
    LinearGamma,
    NormIdentity,
    ProductGateStop,
    ProductUniform,
    ResidualEpsilon,
    SoftmaxConstant,
    SoftmaxDeepTaylor,
)

D = torch.float64


class Fn(nn.Module):
    """A module whose forward is ``fn(x)``."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def relevance(fn, x, seed, op_map, signal="relevance"):
    """``R_in`` of ``fn`` at ``x`` for output relevance ``seed`` under ``op_map``."""
    with Gradient(Fn(fn), OpComposite(op_map, signal=signal)) as attributor:
        _, result = attributor(x, seed)
    return result


def stab(y, eps):
    return y + eps * torch.where(y >= 0, 1.0, -1.0).to(y.dtype)


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


@pytest.mark.parametrize("signal", ["relevance", "gradient"])
def test_softmax_deep_taylor(gen, signal):
    x = torch.randn(2, 5, generator=gen, dtype=D)
    R = torch.randn(2, 5, generator=gen, dtype=D)
    s = torch.softmax(x, -1)
    # R_in = x ⊙ (R − s ΣR)
    expected = x * (R - s * R.sum(-1, keepdim=True))
    got = relevance(
        lambda t: torch.softmax(t, -1), x, R, [("softmax", SoftmaxDeepTaylor())], signal
    )
    torch.testing.assert_close(got, expected)


def test_softmax_masked_entries_stay_zero(gen):
    x = torch.randn(3, 4, generator=gen, dtype=D)
    mask = torch.tensor([[0, 0, 1, 1], [0, 1, 0, 1], [0, 0, 0, 1]], dtype=torch.bool)
    # the relevance arriving at a masked output (s = 0) is 0 in any relevance flow
    R = torch.randn(3, 4, generator=gen, dtype=D).masked_fill(mask, 0)

    def fn(t):
        return F.softmax(t.masked_fill(mask, float("-inf")), dim=-1)

    got = relevance(fn, x, R, [("softmax", SoftmaxDeepTaylor())])
    masked = x.masked_fill(mask, 0)
    s = fn(x)
    expected = masked * (R - s * R.sum(-1, keepdim=True))
    assert torch.isfinite(got).all() and (got[mask] == 0).all()
    torch.testing.assert_close(got, expected)


def test_softmax_constant_passes_nothing(gen):
    x = torch.randn(2, 5, generator=gen, dtype=D)
    R = torch.randn(2, 5, generator=gen, dtype=D)
    # the sum (no rule: plain gradient) passes R to both terms; the softmax term passes nothing on
    got = relevance(lambda t: torch.softmax(t, -1) + t, x, R, [("softmax", SoftmaxConstant())])
    torch.testing.assert_close(got, R)


@pytest.mark.parametrize("epsilon", [0.0, 0.1])
def test_bilinear_uniform(gen, epsilon):
    x = torch.randn(2, 2, 3, 3, generator=gen, dtype=D)
    R = torch.randn(2, 3, 3, generator=gen, dtype=D)
    A, B = x[:, 0], x[:, 1]
    Y = A @ B
    # R_A = ½ A ⊙ ((R/(Y+ε)) Bᵀ), R_B = ½ B ⊙ (Aᵀ (R/(Y+ε)))
    Z = R / stab(Y, epsilon)
    expected = torch.stack(
        [0.5 * A * (Z @ B.transpose(1, 2)), 0.5 * B * (A.transpose(1, 2) @ Z)], 1
    )
    got = relevance(lambda t: t[:, 0] @ t[:, 1], x, R, [("matmul", BilinearUniform(epsilon))])
    torch.testing.assert_close(got, expected)
    if epsilon == 0:
        torch.testing.assert_close(got.sum(), R.sum())


@pytest.mark.parametrize("op", ["einsum", "bmm"])
def test_bilinear_uniform_other_spellings(gen, op):
    x = torch.randn(2, 2, 3, 3, generator=gen, dtype=D)
    R = torch.randn(2, 3, 3, generator=gen, dtype=D)
    spelled = {
        "einsum": lambda t: torch.einsum("bij,bjk->bik", t[:, 0], t[:, 1]),
        "bmm": lambda t: torch.bmm(t[:, 0], t[:, 1]),
    }[op]
    rule = [("matmul", BilinearUniform())]
    expected = relevance(lambda t: t[:, 0] @ t[:, 1], x, R, rule)
    torch.testing.assert_close(relevance(spelled, x, R, rule), expected)


@pytest.mark.parametrize("epsilon", [0.0, 0.01])
def test_linear_epsilon(gen, epsilon):
    x = torch.randn(4, 3, generator=gen, dtype=D)
    W = torch.randn(2, 3, generator=gen, dtype=D)
    b = torch.randn(2, generator=gen, dtype=D)
    R = torch.randn(4, 2, generator=gen, dtype=D)
    y = x @ W.T + b
    # R_x = x ⊙ Wᵀ(R/(y + ε sign y))
    expected = x * ((R / stab(y, epsilon)) @ W)
    got = relevance(lambda t: F.linear(t, W, b), x, R, [("linear", LinearEpsilon(epsilon))])
    torch.testing.assert_close(got, expected)
    got = relevance(lambda t: torch.addmm(b, t, W.T), x, R, [("addmm", LinearEpsilon(epsilon))])
    torch.testing.assert_close(got, expected)


def test_linear_gamma(gen):
    x = torch.randn(4, 3, generator=gen, dtype=D)
    W = torch.randn(2, 3, generator=gen, dtype=D)
    b = torch.randn(2, generator=gen, dtype=D)
    R = torch.randn(4, 2, generator=gen, dtype=D)
    gamma, eps = 0.5, 1e-6
    Wg, bg = W + gamma * W.clamp(min=0), b + gamma * b.clamp(min=0)
    # R_x = x ⊙ W_γᵀ(R/(z_γ + ε sign z_γ))
    expected = x * ((R / stab(x @ Wg.T + bg, eps)) @ Wg)
    got = relevance(lambda t: F.linear(t, W, b), x, R, [("linear", LinearGamma(gamma, eps))])
    torch.testing.assert_close(got, expected)


def test_product_uniform_and_constant_product(gen):
    x = torch.randn(3, 2, 4, generator=gen, dtype=D)
    R = torch.randn(3, 4, generator=gen, dtype=D)
    got = relevance(lambda t: t[:, 0] * t[:, 1], x, R, [("mul", ProductUniform())])
    torch.testing.assert_close(got, torch.stack([R / 2, R / 2], 1))  # R_a = R_b = ½R
    c = torch.randn(4, generator=gen, dtype=D)
    got = relevance(lambda t: t[:, 0] * c, x, R, [("mul", ProductUniform())])
    torch.testing.assert_close(got[:, 0], R)  # product with a constant: linear, R_a = R
    assert (got[:, 1] == 0).all()


def test_product_gate_stop(gen):
    x = torch.randn(3, 2, 4, generator=gen, dtype=D)
    R = torch.randn(3, 4, generator=gen, dtype=D)
    rules = [("activation", ElementwiseIdentity()), ("mul", ProductGateStop())]
    got = relevance(lambda t: F.silu(t[:, 0]) * t[:, 1], x, R, rules)
    assert (got[:, 0] == 0).all()  # R_gate = 0
    torch.testing.assert_close(got[:, 1], R)  # R_other = R


@pytest.mark.parametrize("epsilon", [0.0, 0.1])
def test_residual_epsilon(gen, epsilon):
    x = torch.randn(3, 2, 4, generator=gen, dtype=D)
    R = torch.randn(3, 4, generator=gen, dtype=D)
    a, b = x[:, 0], x[:, 1]
    y = a + b
    # R_a = a R/(y + ε sign y)
    expected = torch.stack([a * R / stab(y, epsilon), b * R / stab(y, epsilon)], 1)
    got = relevance(lambda t: t[:, 0] + t[:, 1], x, R, [("add", ResidualEpsilon(epsilon))])
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("fn", [F.gelu, F.silu, torch.tanh, torch.sigmoid])
def test_activation_identity(gen, fn):
    x = torch.randn(3, 5, generator=gen, dtype=D)
    R = torch.randn(3, 5, generator=gen, dtype=D)
    got = relevance(fn, x, R, [("activation", ElementwiseIdentity())])
    torch.testing.assert_close(got, R)  # R_x = R


def test_layer_norm_identity(gen):
    x = torch.randn(3, 6, generator=gen, dtype=D)
    R = torch.randn(3, 6, generator=gen, dtype=D)
    w = torch.randn(6, generator=gen, dtype=D)
    b = torch.randn(6, generator=gen, dtype=D)
    y = F.layer_norm(x, (6,), w, b, 1e-5)
    sigma = (x.var(-1, unbiased=False, keepdim=True) + 1e-5).sqrt()
    # R_x = x ⊙ (v − mean v), v = w ⊙ (R/y)/σ
    v = w * (R / y) / sigma
    expected = x * (v - v.mean(-1, keepdim=True))
    got = relevance(
        lambda t: F.layer_norm(t, (6,), w, b, 1e-5), x, R, [("layer_norm", NormIdentity())]
    )
    torch.testing.assert_close(got, expected)
    # without bias the rule conserves: Σ R_x = Σ R
    got = relevance(
        lambda t: F.layer_norm(t, (6,), w, None), x, R, [("layer_norm", NormIdentity())]
    )
    torch.testing.assert_close(got.sum(-1), R.sum(-1))


def test_rms_norm_identity(gen):
    x = torch.randn(3, 6, generator=gen, dtype=D)
    R = torch.randn(3, 6, generator=gen, dtype=D)
    w = torch.randn(6, generator=gen, dtype=D)
    got = relevance(lambda t: F.rms_norm(t, (6,), w, 1e-6), x, R, [("rms_norm", NormIdentity())])
    torch.testing.assert_close(got, R)  # R_x = R


class HandWrittenRMSNorm(nn.Module):
    def __init__(self, weight):
        super().__init__()
        self.weight = nn.Parameter(weight)

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6))


def test_identity_rule_on_a_hand_written_module(gen):
    x = torch.randn(3, 6, generator=gen, dtype=D)
    R = torch.randn(3, 6, generator=gen, dtype=D)
    norm = HandWrittenRMSNorm(torch.randn(6, generator=gen, dtype=D))
    composite = OpComposite([("mul", ProductUniform())], [("*RMSNorm", ElementwiseIdentity())])
    with Gradient(norm, composite) as attributor:
        _, got = attributor(x, R)
        assert [c["name"] for c in composite.captured] == [":module#0"]  # nothing inside
    torch.testing.assert_close(got, R)
    composite = OpComposite([], [(HandWrittenRMSNorm, ActivationIdentity())])
    with Gradient(Fn(lambda t: t.reshape(3, 2, 3)), composite):
        pass
    bad = OpComposite([], [(Fn, ElementwiseIdentity())])
    with pytest.raises(ValueError, match="input's shape"):
        with Gradient(Fn(lambda t: t.sum(-1)), bad) as attributor:
            attributor(x, torch.ones(3, dtype=D))


def _attention_reference(q, k, v, R, mask=None):
    """AttnLRP on attention, written out: bilinear uniform products, Deep Taylor softmax,
    the z-rule on the scaling and the additive mask."""
    scale = q.shape[-1] ** -0.5
    qk = q @ k.transpose(-2, -1)
    scores = qk * scale + (0 if mask is None else mask)
    A = torch.softmax(scores, -1)
    out = A @ v
    Z = R / out
    R_A, R_v = 0.5 * A * (Z @ v.transpose(-2, -1)), 0.5 * v * (A.transpose(-2, -1) @ Z)
    finite = torch.where(torch.isfinite(scores), scores, 0)
    R_scores = finite * (R_A - A * R_A.sum(-1, keepdim=True))
    R_qk = torch.where(torch.isfinite(scores), R_scores * (qk * scale) / scores, 0)
    Z2 = R_qk / qk
    return 0.5 * q * (Z2 @ k), 0.5 * k * (Z2.transpose(-2, -1) @ q), R_v


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("epsilon", [0.0, 1e-12])
def test_attention_uniform(gen, masked, epsilon):
    x = torch.randn(2, 3, 2, 4, 5, generator=gen, dtype=D)  # (N, q/k/v, heads, L, E)
    R = torch.randn(2, 2, 4, 5, generator=gen, dtype=D)
    mask = None
    if masked:
        mask = torch.zeros(4, 4, dtype=D)
        mask[0, 2:] = float("-inf")
        mask[1, 1] = 0.7

    def fn(t):
        return F.scaled_dot_product_attention(t[:, 0], t[:, 1], t[:, 2], attn_mask=mask)

    got = relevance(fn, x, R, [("attention", AttentionUniform(epsilon))])
    expected = torch.stack(_attention_reference(x[:, 0], x[:, 1], x[:, 2], R, mask), 1)
    torch.testing.assert_close(got, expected)


def test_attention_causal_and_grouped_query(gen):
    q = torch.randn(1, 4, 5, 3, generator=gen, dtype=D)
    kv = torch.randn(1, 2, 2, 5, 3, generator=gen, dtype=D)
    R = torch.randn(1, 4, 5, 3, generator=gen, dtype=D)
    x = torch.cat([q, kv.reshape(1, 4, 5, 3)], 1)

    def fn(t, **kw):
        k, v = t[:, 4:6], t[:, 6:8]
        return F.scaled_dot_product_attention(t[:, :4], k, v, is_causal=True, enable_gqa=True)

    fused = relevance(fn, x, R, [("attention", AttentionUniform(0.0))])
    written = relevance(fn, x, R, [("attention", AttentionUniform(1e-300))])  # decomposed path
    torch.testing.assert_close(fused, written)


def test_attention_cp(gen):
    x = torch.randn(2, 3, 2, 4, 5, generator=gen, dtype=D)
    R = torch.randn(2, 2, 4, 5, generator=gen, dtype=D)
    got = relevance(
        lambda t: F.scaled_dot_product_attention(t[:, 0], t[:, 1], t[:, 2]),
        x, R, [("attention", AttentionCP())],
    )  # fmt: skip
    q, k, v = x[:, 0], x[:, 1], x[:, 2]
    A = torch.softmax(q @ k.transpose(-2, -1) / 5**0.5, -1)
    # R_v = v ⊙ Aᵀ(R/y), R_q = R_k = 0
    assert (got[:, :2] == 0).all()
    torch.testing.assert_close(got[:, 2], v * (A.transpose(-2, -1) @ (R / (A @ v))))


@pytest.mark.parametrize("bad", [-1.0, "x", True])
def test_rule_parameters_are_checked(bad):
    for rule in (LinearEpsilon, BilinearUniform, ResidualEpsilon, AttentionUniform):
        with pytest.raises(ValueError, match="epsilon"):
            rule(bad)
    with pytest.raises(ValueError, match="gamma"):
        LinearGamma(bad)
