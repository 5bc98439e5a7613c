"""What must hold on any network: conservation, finiteness, batch invariance, clean removal."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from lrp_core.core import Composite
from lrp_core.rules import AlphaBeta, Epsilon, Gamma, Norm, Pass, ZBox, ZPlus

RULES = {
    "epsilon": lambda: Epsilon(1e-12),
    "zplus": lambda: ZPlus(stabilizer=1e-12),
    "alphabeta": lambda: AlphaBeta(2.0, 1.0, stabilizer=1e-12),
    "gamma": lambda: Gamma(0.5, stabilizer=1e-12),
}


class ByType(Composite):
    """Linear-type layers get ``rule``, ReLU gets Pass, average pools get Norm."""

    def __init__(self, rule):
        super().__init__()
        self.rule = rule

    def module_map(self, ctx, name, module):
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            return self.rule
        if isinstance(module, nn.ReLU):
            return Pass()
        if isinstance(module, (nn.AvgPool1d, nn.AvgPool2d)):
            return Norm(1e-12)
        return None


def relevance(model, composite, x, seed):
    with composite.context(model):
        x = x.clone().requires_grad_()
        out = model(x)
        (grad,) = torch.autograd.grad(out, x, seed)
    return out.detach(), grad


@st.composite
def networks(draw):
    """A bias-free ReLU network of Conv1d and Linear layers (float64) and an input for it."""
    torch.manual_seed(draw(st.integers(0, 2**16)))
    channels = [draw(st.integers(1, 4)) for _ in range(draw(st.integers(1, 3)) + 1)]
    length = draw(st.integers(3, 6))
    features = length
    layers: list[nn.Module] = []
    for c_in, c_out in zip(channels, channels[1:], strict=False):
        layers += [nn.Conv1d(c_in, c_out, 3, padding=1, bias=False), nn.ReLU()]
    if draw(st.booleans()):
        layers.append(nn.AvgPool1d(2, ceil_mode=True))
        features = (length + 1) // 2
    layers += [
        nn.Flatten(),
        nn.Linear(channels[-1] * features, draw(st.integers(1, 4)), bias=False),
    ]
    model = nn.Sequential(*layers).double().eval()
    x = torch.randn(draw(st.integers(1, 3)), channels[0], length, dtype=torch.float64)
    return model, x


@settings(max_examples=25, deadline=None)
@given(networks(), st.sampled_from(sorted(RULES)))
def test_conservation_finiteness_and_clean_removal(network, rule_name):
    """Bias-free ReLU nets: Σ R_in = Σ R_out (seed = output) for Epsilon(ε→0), ZPlus,
    AlphaBeta(α−β=1) and Gamma; afterwards no hook is left and parameters are bit-identical."""
    model, x = network
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = model(x).detach()
    seed = torch.randn_like(out)
    _, rel = relevance(model, ByType(RULES[rule_name]()), x, seed)
    assert torch.isfinite(rel).all()
    for module in model.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    if rule_name == "alphabeta":
        return  # conserves only where both z_p and z_n are non-zero: see the dedicated test
    # output relevance: the output itself; for ZPlus its positive part, since ZPlus drops the
    # relevance of units whose z = f(x⁺; θ⁺) vanishes, and a unit with output > 0 has z > 0
    seed = out.clamp(min=0) if rule_name == "zplus" else out.clone()
    _, rel = relevance(model, ByType(RULES[rule_name]()), x, seed)
    total_in, total_out = rel.sum(dim=(1, 2)), seed.sum(dim=1)
    torch.testing.assert_close(total_in, total_out, rtol=1e-6, atol=1e-8)


def test_alpha_beta_conserves_when_both_parts_are_nonzero():
    """AlphaBeta(α, β), α − β = 1, on a bias-free dense layer with x > 0 and weights of both
    signs in every row: Σ R_in = α Σ R − β Σ R = Σ R."""
    torch.manual_seed(7)
    layer = nn.Linear(6, 4, bias=False).double()
    with torch.no_grad():
        layer.weight[:, 0] = layer.weight[:, 0].abs() + 0.1
        layer.weight[:, 1] = -layer.weight[:, 1].abs() - 0.1
    x = torch.rand(3, 6, dtype=torch.float64) + 0.1
    seed = torch.randn(3, 4, dtype=torch.float64)
    for alpha in (1.0, 2.0, 3.5):
        _, rel = relevance(layer, ByType(AlphaBeta(alpha, alpha - 1.0, stabilizer=1e-12)), x, seed)
        torch.testing.assert_close(rel.sum(1), seed.sum(1), rtol=1e-8, atol=1e-10)


def relu_net(bias=False, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1, bias=bias),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(4 * 3 * 3, 5, bias=bias),
        nn.ReLU(),
        nn.Linear(5, 3, bias=bias),
    ).double()


def test_epsilon_to_zero_equals_gradient_times_input():
    """Bias-free ReLU net, Epsilon(ε→0) on linear layers (Norm on the average pool, also linear),
    Pass on ReLU, output relevance f(x) ⊙ w: R = x ⊙ ∂(w·f)/∂x (LRP-0 is gradient × input)."""
    model = relu_net()
    x = torch.randn(3, 2, 6, 6, dtype=torch.float64)
    weights = torch.randn(3, 3, dtype=torch.float64)
    seed = model(x).detach() * weights
    _, rel = relevance(model, ByType(Epsilon(1e-12)), x, seed)
    x_grad = x.clone().requires_grad_()
    (grad,) = torch.autograd.grad(model(x_grad), x_grad, weights)
    torch.testing.assert_close(rel, x * grad, rtol=1e-6, atol=1e-9)


def test_alpha1_beta0_equals_zplus_on_nonnegative_input():
    model = relu_net(bias=True)
    x = torch.rand(2, 2, 6, 6, dtype=torch.float64)
    seed = torch.randn(2, 3, dtype=torch.float64)
    _, alpha_beta = relevance(model, ByType(AlphaBeta(1.0, 0.0)), x, seed)
    _, zplus = relevance(model, ByType(ZPlus()), x, seed)
    torch.testing.assert_close(alpha_beta, zplus, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "rule", [Epsilon(), ZPlus(), AlphaBeta(), Gamma(), ZBox(-1.0, 1.0)], ids=lambda r: repr(r)
)
def test_batch_invariance(rule):
    """The relevance of sample i in a batch equals its relevance computed alone."""
    model = relu_net(bias=True, seed=3)
    x = torch.randn(3, 2, 6, 6, dtype=torch.float64)
    seed = torch.randn(3, 3, dtype=torch.float64)
    _, batch = relevance(model, ByType(rule), x, seed)
    for i in range(3):
        _, alone = relevance(model, ByType(rule), x[i : i + 1], seed[i : i + 1])
        torch.testing.assert_close(batch[i : i + 1], alone, rtol=1e-10, atol=1e-12)
