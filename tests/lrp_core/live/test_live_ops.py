"""Live explanations with rules on captured operations (AttnLRP, CP-LRP): one forward pass, op
rules changed by backward passes only, per-call records and conservation, and nothing left behind.

The truth for every live result is the same composite run by the ``Gradient`` attributor on the
same model (float64); its own correctness is tested against formulas (``test_op_rules``) and
against LXT (``test_attnlrp_oracle``).
"""

from __future__ import annotations

import json
import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lrp_core.attention_rules import AttentionUniform
from lrp_core.attribution import Gradient
from lrp_core.composites import COMPOSITES, OP_COMPOSITES, EpsilonPlusFlat
from lrp_core.live import LiveExplanation, LiveInputError, OpAssignmentError, conservation_report
from lrp_core.map_composites import PlainGradientFallbackWarning
from lrp_core.op_composites import CPLRP, AttnLRP, CaptureConflictError
from lrp_core.op_rules import BilinearUniform, LinearEpsilon, SoftmaxConstant
from lrp_core.rules import Epsilon

from .threads import run_threads

D = torch.float64


class RMSNorm(nn.Module):
    """Hand-written RMS norm (the composites put the identity rule on ``*RMSNorm`` modules)."""

    def __init__(self, d):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return self.weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)


class Block(nn.Module):
    """A Llama-like block: RMSNorm, attention with a constant rotary-like factor, a gated MLP and
    two residual sums written in ``forward``."""

    def __init__(self, d=8, heads=2, fused=False):
        super().__init__()
        self.heads, self.fused = heads, fused
        self.norm1, self.norm2 = RMSNorm(d), RMSNorm(d)
        self.q, self.k, self.v, self.o = (nn.Linear(d, d, bias=False) for _ in range(4))
        self.gate, self.up = nn.Linear(d, 12, bias=False), nn.Linear(d, 12, bias=False)
        self.down = nn.Linear(12, d, bias=False)

    def attention(self, x):
        n, length, d = x.shape
        q, k, v = (
            f(x).view(n, length, self.heads, -1).transpose(1, 2) for f in (self.q, self.k, self.v)
        )
        rotary = torch.linspace(0.5, 1.5, q.shape[-1], dtype=x.dtype)
        q, k = q * rotary, k * rotary
        if self.fused:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
            causal = torch.ones(length, length, dtype=torch.bool).triu(1)
            out = torch.softmax(scores.masked_fill(causal, float("-inf")), -1) @ v
        return self.o(out.transpose(1, 2).reshape(n, length, d))

    def forward(self, x):
        x = x + self.attention(self.norm1(x))
        h = self.norm2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class TinyLM(nn.Module):
    def __init__(self, fused=False, layers=2):
        super().__init__()
        self.layers = nn.ModuleList([Block(fused=fused) for _ in range(layers)])
        self.head = nn.Linear(8, 5, bias=False)
        self.fail = False

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        if self.fail:
            raise RuntimeError("boom inside forward")
        return self.head(x[:, -1])


def _model(fused=False, seed=0):
    torch.manual_seed(seed)
    return TinyLM(fused).to(D).eval()


def _inputs(seed=1):
    return torch.randn(2, 6, 8, dtype=D, generator=torch.Generator().manual_seed(seed))


def _attributor(model, composite, x, target):
    seed = torch.zeros(x.shape[0], 5, dtype=D)
    seed[range(x.shape[0]), target] = 1.0
    with Gradient(model, composite) as attributor:
        return attributor(x, seed)[1]


def _hooks(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


@pytest.mark.parametrize("composite", [AttnLRP, CPLRP])
@pytest.mark.parametrize("fused", [False, True])
def test_live_equals_the_attributor(composite, fused):
    model, x = _model(fused), _inputs()
    expected = _attributor(model, composite(epsilon=1e-9), x, [1, 3])
    with LiveExplanation(model, x, composite(epsilon=1e-9)) as live:
        result = live.explain([1, 3])
        again = live.explain([1, 3])
        assert live.forward_count == 1
    torch.testing.assert_close(result.relevance, expected, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(again.relevance, expected, rtol=1e-12, atol=1e-14)


def test_changing_op_rules_is_backward_only_and_matches_a_fresh_composite():
    model, x = _model(), _inputs()
    linear = _attributor(model, AttnLRP(epsilon=0.1), x, [2, 2])
    bilinear = _attributor(model, AttnLRP(epsilon=0.0, attention_epsilon=0.05), x, [2, 2])
    with LiveExplanation(model, x, AttnLRP(epsilon=0.0)) as live:
        first = live.explain(2).relevance
        live.assign_op("*:linear#*", LinearEpsilon(0.1))
        torch.testing.assert_close(live.explain(2).relevance, linear)
        live.reset_ops()
        live.assign_op("*:matmul#*", BilinearUniform(0.05))
        torch.testing.assert_close(live.explain(2).relevance, bilinear)
        live.reset_ops()
        live.set_op_params("layers.0.q:linear#0", epsilon=0.5)
        row = next(r for r in live.captured if r["name"] == "layers.0.q:linear#0")
        assert row["params"] == {"epsilon": 0.5} and row["origin"] == "override"
        changed = live.explain(2).relevance
        assert not torch.allclose(changed, first)
        live.reset_ops()
        torch.testing.assert_close(live.explain(2).relevance, first)
        assert live.forward_count == 1


def test_softmax_rule_changes_live():
    model, x = _model(), _inputs()
    with LiveExplanation(model, x, AttnLRP(epsilon=0.0)) as live:
        records = live.explain(0).records
        live.assign_op("*:softmax#*", SoftmaxConstant())
        constant = live.explain(0).records
    softmax = [n for n, r in records.items() if r.type == "softmax"]
    assert softmax == ["layers.0:softmax#0", "layers.1:softmax#0"]
    assert all(records[n].rule == "SoftmaxDeepTaylor" for n in softmax)
    assert all(constant[n].rule == "SoftmaxConstant" for n in softmax)
    for name in softmax:  # SoftmaxConstant passes nothing to the scores
        assert float(constant[name].leaving.abs().max()) == 0.0
        assert float(records[name].leaving.abs().max()) > 0.0


def test_conservation_report_per_captured_operation():
    """Without biases and with ε = 0 every rule of AttnLRP conserves except the softmax's
    Deep-Taylor rule with bias; the identity rule on RMSNorm and SiLU passes relevance on
    element-wise. So the report names exactly the softmax calls, and what they absorb is what the
    input misses of the explained logit (the seed)."""
    model, x = _model(), _inputs()
    with LiveExplanation(model, x, AttnLRP(epsilon=0.0)) as live:
        result = live.explain([0, 4])
    report = conservation_report(result.records, tolerance=1e-9)
    assert sorted(report.names) == ["layers.0:softmax#0", "layers.1:softmax#0"]
    absorbed = sum(result.records[n].absorbed for n in report.names)
    seeded = result.seed.sum(1)  # the relevance put on the explained logits
    torch.testing.assert_close(result.relevance.sum((1, 2)) + absorbed, seeded)
    with LiveExplanation(model, x, AttnLRP(epsilon=0.0)) as live:
        kept = live.explain([0, 4], keep_tensors=["layers.1:softmax#0"]).records
    softmax = kept["layers.1:softmax#0"]  # its tensors, formed: their sums are the totals
    torch.testing.assert_close(softmax.relevance_in.sum((1, 2, 3)), softmax.leaving)
    torch.testing.assert_close(softmax.entering, result.records["layers.1:softmax#0"].entering)
    kinds = {r.type for r in result.records.values()}
    assert {"linear", "matmul", "softmax", "mul", "add", "activation"} <= kinds


@pytest.mark.parametrize("fused", [False, True])
def test_cplrp_conserves_without_biases(fused):
    model, x = _model(fused), _inputs()
    with LiveExplanation(model, x, CPLRP(epsilon=0.0)) as live:
        result = live.explain([0, 4])
    assert conservation_report(result.records, tolerance=1e-9).ok
    torch.testing.assert_close(result.relevance.sum((1, 2)), result.seed.sum(1))


def test_describe_lists_the_captured_operations():
    model, x = _model(), _inputs()
    with LiveExplanation(model, x, AttnLRP()) as live:
        tree = json.loads(json.dumps(live.describe()))
        live.assign_op("layers.1:softmax#0", SoftmaxConstant())
        changed = live.describe()
    layer = tree["children"][0]["children"][0]
    assert layer["name"] == "layers.0"
    assert [op["name"] for op in layer["ops"]] == [
        "layers.0:mul#0",
        "layers.0:mul#1",
        "layers.0:matmul#0",
        "layers.0:softmax#0",
        "layers.0:matmul#1",
        "layers.0:add#0",
        "layers.0:activation#0",
        "layers.0:mul#2",
        "layers.0:add#1",
    ]
    assert layer["ops"][3] == {
        "name": "layers.0:softmax#0",
        "op": "softmax",
        "rule": "SoftmaxDeepTaylor",
        "params": {},
        "origin": "composite",
    }
    q = layer["children"][2]
    assert q["name"] == "layers.0.q" and q["ops"][0]["rule"] == "LinearEpsilon"
    assert q["ops"][0]["params"] == {"epsilon": 1e-6}
    softmax = changed["children"][0]["children"][1]["ops"][3]
    assert softmax["rule"] == "SoftmaxConstant" and softmax["origin"] == "override"


def test_bad_op_assignments_are_named_and_change_nothing():
    model, x = _model(), _inputs()
    with LiveExplanation(model, x, AttnLRP()) as live:
        before = live.explain(1).relevance
        with pytest.raises(OpAssignmentError, match=r"pattern: '\*:softmx#\*' matches no"):
            live.assign_op("*:softmx#*", SoftmaxConstant())
        with pytest.raises(OpAssignmentError, match="SoftmaxConstant applies to"):
            live.assign_op("*:matmul#*", SoftmaxConstant())
        with pytest.raises(OpAssignmentError, match="expected an op rule"):
            live.assign_op("*:matmul#*", Epsilon())
        with pytest.raises(OpAssignmentError, match="stabilizer: LinearEpsilon has parameters"):
            live.set_op_params("layers.0.q:linear#0", stabilizer=1.0)
        with pytest.raises(OpAssignmentError, match="LinearEpsilon: epsilon must be"):
            live.set_op_params("layers.0.q:linear#0", epsilon=-1.0)
        with pytest.raises(OpAssignmentError, match="assign_op / set_op_params"):
            live.assign(Epsilon(), name="layers.0.q")
        with pytest.raises(CaptureConflictError, match="already captured"):
            _attributor(model, AttnLRP(), x, [1, 1])
        torch.testing.assert_close(live.explain(1).relevance, before)
    with (
        pytest.warns(PlainGradientFallbackWarning, match="RMSNorm"),
        LiveExplanation(model, x, EpsilonPlusFlat()) as live,
    ):
        with pytest.raises(OpAssignmentError, match="captures no operations"):
            live.assign_op("*", SoftmaxConstant())
        with pytest.raises(OpAssignmentError, match="start a new LiveExplanation"):
            live.set_composite(AttnLRP())


def test_nothing_left_behind_after_close_and_after_errors_in_the_forward():
    model, x = _model(), _inputs()
    model.head.weight.requires_grad_(False)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [p.requires_grad for p in model.parameters()]
    live = LiveExplanation(model, x, CPLRP())
    before = live.explain(2).relevance
    captured = live.captured
    model.fail = True
    with pytest.raises(LiveInputError, match="boom inside forward"):
        live.set_inputs(_inputs(seed=5))
    assert torch._C._len_torch_function_stack() == 0
    assert [p.requires_grad for p in model.parameters()] == flags
    torch.testing.assert_close(live.explain(2).relevance, before)  # the previous batch stays
    assert live.captured == captured
    live.close()
    with pytest.raises(LiveInputError, match="boom inside forward"):
        LiveExplanation(model, x, AttnLRP())
    assert _hooks(model) == 0 and torch._C._len_torch_function_stack() == 0
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    model.fail = False
    leaf = x.clone().requires_grad_()
    (grad,) = torch.autograd.grad(model(leaf)[:, 2].sum(), leaf)
    with Gradient(model) as attributor:
        plain = attributor(x, torch.eye(5, dtype=D)[[2, 2]])[1]
    torch.testing.assert_close(plain, grad)


def test_fused_torch_attention_live():
    torch.manual_seed(3)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
    encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).to(D).eval()
    model = nn.Sequential(encoder, nn.Flatten(), nn.Linear(40, 5).to(D)).eval()
    x = torch.randn(2, 5, 8, dtype=D)
    expected = _attributor(model, AttnLRP(epsilon=1e-9), x, [0, 3])
    with LiveExplanation(model, x, AttnLRP(epsilon=1e-9)) as live:
        torch.testing.assert_close(live.explain([0, 3]).relevance, expected)
        names = [row["name"] for row in live.captured]
    assert "0.layers.0.self_attn:softmax#0" in names
    assert "0.layers.0.self_attn:multi_head_attention#0" not in names  # re-entered, fixed


def test_attention_epsilon_on_fused_attention_matches_the_attributor():
    model, x = _model(fused=True), _inputs()
    expected = _attributor(model, AttnLRP(epsilon=0.0, attention_epsilon=1e-3), x, [4, 4])
    with LiveExplanation(model, x, AttnLRP(epsilon=0.0)) as live:
        live.assign_op("*:attention#*", AttentionUniform(1e-3))
        torch.testing.assert_close(live.explain(4).relevance, expected)


def test_op_composites_by_name_and_apart_from_the_module_composites():
    model, x = _model(), _inputs()
    with LiveExplanation(model, x, "cp_lrp", composite_params={"epsilon": 0.0}) as live:
        by_name = live.explain(1).relevance
    with LiveExplanation(model, x, CPLRP(epsilon=0.0)) as live:
        torch.testing.assert_close(by_name, live.explain(1).relevance)
    assert {"attn_lrp", "cp_lrp"} <= set(OP_COMPOSITES)
    assert not {"attn_lrp", "cp_lrp"} & set(COMPOSITES)  # the widgets' and Zennit's set


def test_configuration_round_trip_with_op_overrides():
    model, twin, x = _model(), _model(), _inputs()
    with LiveExplanation(model, x, AttnLRP(epsilon=1e-3)) as live:
        live.assign_op("*:softmax#*", SoftmaxConstant())
        live.set_op_params("layers.1.q:linear#0", epsilon=0.25)
        live.assign_op("layers.0:mul#2", None)
        text = live.to_json()
        expected, rows = live.explain(3).relevance, live.captured
    config = json.loads(text)
    assert config["composite"]["name"] == "attn_lrp"
    assert config["op_overrides"][1] == {
        "pattern": "layers.1.q:linear#0",
        "rule": "LinearEpsilon",
        "params": {"epsilon": 0.25},
    }
    with LiveExplanation.from_config(twin, x, text) as loaded:
        torch.testing.assert_close(loaded.explain(3).relevance, expected)
        assert loaded.captured == rows
    config["op_overrides"][0]["rule"] = "SoftmaxConstants"
    with pytest.raises(OpAssignmentError, match=r"op_overrides\[0\].rule: unknown op rule"):
        LiveExplanation.from_config(twin, x, config)
    assert _hooks(twin) == 0


def test_op_edits_racing_explanations_never_mix_two_configurations():
    """One thread switches every captured linear call between two epsilons in one edit while
    another explains; each result must be exactly one configuration's relevance (an op edit
    waits for a running backward pass instead of landing inside it)."""
    model, x = _model(), _inputs()
    with LiveExplanation(model, x, AttnLRP(epsilon=0.0)) as live:
        values = []
        for epsilon in (0.01, 1.0):
            live.assign_op("*:linear#*", LinearEpsilon(epsilon))
            values.append(live.explain(2).relevance)
        assert float((values[0] - values[1]).abs().max()) > 1e-6
        stop = time.monotonic() + 3.0
        results = []

        def edit() -> None:
            flip = 0
            while time.monotonic() < stop:
                live.assign_op("*:linear#*", LinearEpsilon((0.01, 1.0)[flip]))
                flip = 1 - flip

        def explain() -> None:
            while time.monotonic() < stop:
                results.append(live.explain(2).relevance)

        errors = run_threads((edit,), (explain,))
    assert not errors
    assert len(results) > 5
    mixed = [r for r in results if not any(torch.equal(r, v) for v in values)]
    assert not mixed, f"{len(mixed)} of {len(results)} results match no configuration"
