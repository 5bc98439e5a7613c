"""Capture of functional operations: names, addressing, and leaving nothing behind."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lrp_core.attribution import Gradient
from lrp_core.composites import EpsilonPlusFlat, get_composite
from lrp_core.op_composites import CPLRP, AttnLRP, Op, OpComposite
from lrp_core.op_rules import BilinearUniform, LinearEpsilon, OpPass, ResidualEpsilon

D = torch.float64


class Attention(nn.Module):
    def __init__(self, d=4):
        super().__init__()
        self.q, self.k, self.v = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)

    def forward(self, x):
        scores = self.q(x) @ self.k(x).transpose(-1, -2)
        return torch.matmul(torch.softmax(scores, -1), self.v(x))


class Layer(nn.Module):
    def __init__(self, d=4):
        super().__init__()
        self.attn = Attention(d)
        self.norm = nn.LayerNorm(d)

    def forward(self, x):
        x = x + self.attn(self.norm(x))
        return x + F.gelu(x)


class Net(nn.Module):
    def __init__(self, fail=False):
        super().__init__()
        self.layers = nn.ModuleList([Layer(), Layer()])
        self.head = nn.Linear(4, 3)
        self.fail = fail

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        if self.fail:
            raise RuntimeError("boom inside forward")
        return self.head(x.mean(1))


@pytest.fixture
def net():
    torch.manual_seed(0)
    return Net().to(D).eval()


def _explain(model, composite, x=None):
    x = torch.randn(2, 5, 4, dtype=D) if x is None else x
    with Gradient(model, composite) as attributor:
        output, relevance = attributor(x, torch.ones(2, 3, dtype=D))
        captured = composite.captured
    return relevance, captured


def test_calls_get_stable_names_from_module_and_order(net):
    composite = AttnLRP()
    _, captured = _explain(net, composite)
    names = [c["name"] for c in captured]
    assert names[:8] == [
        "layers.0.norm:layer_norm#0",
        "layers.0.attn.q:linear#0",
        "layers.0.attn.k:linear#0",
        "layers.0.attn:matmul#0",
        "layers.0.attn:softmax#0",
        "layers.0.attn.v:linear#0",
        "layers.0.attn:matmul#1",
        "layers.0:add#0",
    ]
    assert "layers.1:activation#0" in names and "layers.1:add#1" in names
    assert names[-1] == "head:linear#0"
    rules = {c["name"]: c["rule"] for c in captured}
    assert rules["layers.0.attn:matmul#1"] == "BilinearUniform"
    assert rules["layers.0:add#0"] == "ResidualEpsilon"
    # the same names on every forward pass
    assert [c["name"] for c in _explain(net, composite)[1]] == names


def test_addressing_by_name_type_and_subtree(net):
    special = LinearEpsilon(0.5)
    composite = OpComposite(
        [
            ("layers.1.attn:matmul#1", BilinearUniform(0.25)),
            (Op("linear", within="layers.1"), special),
            ("*:add#1", ResidualEpsilon(0.1)),
            ("matmul", BilinearUniform(0.0)),
        ],
        signal="gradient",
    )
    with Gradient(net, composite) as attributor:
        attributor(torch.randn(2, 5, 4, dtype=D), torch.ones(2, 3, dtype=D))
        rules = dict(composite.op_rules)
    assert rules["layers.1.attn:matmul#1"].epsilon == 0.25
    assert rules["layers.1.attn:matmul#0"].epsilon == 0.0
    assert rules["layers.0.attn:matmul#1"].epsilon == 0.0
    assert rules["layers.1.attn.q:linear#0"].epsilon == 0.5
    assert rules["layers.0.attn.q:linear#0"] is None  # no entry for it: plain
    assert rules["head:linear#0"] is None
    assert rules["layers.0:add#1"].epsilon == 0.1
    assert rules["layers.0:add#0"] is None
    assert composite.rule_for("layers.1:add#1", "add", "layers.1").epsilon == 0.1
    assert Op(within="layers.1").matches("layers.10:add#0", "add", "layers.10") is False


def _hooks(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


@pytest.mark.parametrize("name", ["attn_lrp", "cp_lrp"])
def test_nothing_left_behind_after_success_and_after_an_error(net, name):
    composite = get_composite(name)()
    net.head.weight.requires_grad_(False)  # a frozen parameter stays frozen
    state = {k: v.clone() for k, v in net.state_dict().items()}
    _explain(net, composite)
    net.fail = True
    with pytest.raises(RuntimeError, match="boom inside forward"):
        _explain(net, composite)
    assert torch._C._len_torch_function_stack() == 0
    assert _hooks(net) == 0
    assert [p.requires_grad for p in net.parameters()] == [
        p is not net.head.weight for p in net.parameters()
    ]
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    # a plain forward afterwards is not captured and gives the model's gradient
    net.fail = False
    x = torch.randn(2, 5, 4, dtype=D, requires_grad=True)
    (grad,) = torch.autograd.grad(net(x).sum(), x)
    with Gradient(net) as attributor:
        _, plain = attributor(x, torch.ones(2, 3, dtype=D))
    torch.testing.assert_close(plain, grad)


def test_remove_during_a_forward_undoes_the_capture(net):
    composite = AttnLRP()
    composite.register(net)
    net.layers[0].register_forward_hook(lambda *args: composite.remove())
    net(torch.randn(1, 5, 4, dtype=D, requires_grad=True))
    assert torch._C._len_torch_function_stack() == 0
    assert all(p.requires_grad for p in net.parameters())


def test_forward_without_grad_is_not_captured(net):
    composite = AttnLRP()
    with composite.context(net), torch.no_grad():
        net(torch.randn(1, 5, 4, dtype=D))
        assert composite.captured == []


def test_bad_selectors_and_rules_are_named():
    with pytest.raises(ValueError, match="unknown operation type 'matmull'"):
        OpComposite([("matmull", BilinearUniform())])
    with pytest.raises(TypeError, match="op rule"):
        OpComposite([("matmul", LinearEpsilon)])
    with pytest.raises(TypeError, match="selector"):
        OpComposite([(3, OpPass())])
    with pytest.raises(ValueError, match="signal"):
        OpComposite([], signal="relevances")
    with pytest.raises(ValueError, match="signal='relevance'"):
        OpComposite([], composite=EpsilonPlusFlat(), signal="gradient")


class Residual(nn.Module):
    """``x + f(x)`` written in forward, no module for the sum."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 3, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(3, 3, 3, padding=1, bias=False)
        self.head = nn.Linear(3 * 4 * 4, 2, bias=False)

    def forward(self, x):
        x = x + self.conv2(torch.relu(self.conv1(x)))
        x = torch.relu(x)
        return self.head(x.flatten(1))


def test_residual_sum_in_forward_conserves_with_module_rules_and_no_canonizer():
    torch.manual_seed(1)
    model = Residual().to(D).eval()
    x = torch.rand(2, 3, 4, 4, dtype=D)
    composite = OpComposite(
        [("add", ResidualEpsilon(0.0))], composite=EpsilonPlusFlat(epsilon=1e-12, stabilizer=1e-12)
    )
    with Gradient(model, composite) as attributor:
        output, relevance = attributor(x, lambda out: out * torch.eye(2, dtype=D)[[0, 1]])
    torch.testing.assert_close(relevance.sum((1, 2, 3)), output.diagonal(), rtol=1e-6, atol=1e-9)
    # without the rule on the sum, its plain gradient counts the relevance twice
    with Gradient(model, EpsilonPlusFlat(epsilon=1e-12, stabilizer=1e-12)) as attributor:
        output, doubled = attributor(x, lambda out: out * torch.eye(2, dtype=D)[[0, 1]])
    assert not torch.allclose(doubled.sum((1, 2, 3)), output.diagonal(), rtol=1e-3)


def test_cplrp_and_attnlrp_are_registered():
    assert get_composite("attn_lrp") is AttnLRP and get_composite("CPLRP") is CPLRP
