"""Per-layer records and the conservation report.

Checked: a record's totals are the per-sample sums of the relevance tensors it kept (entering =
at the module's output, leaving = at its input); in a Sequential, what leaves layer l+1 enters
layer l; the first layer's leaving total is the sum of the returned relevance. On a bias-free
ReLU network every LRP rule used here conserves relevance (Σ R_in = Σ R_out up to the
stabilizer), so the report is clean; a rule that doubles relevance is named as "created".
"""

from __future__ import annotations

import math

import pytest
import torch

from lrp_core.composites import EpsilonPlus, EpsilonPlusFlat
from lrp_core.core import BasicHook
from lrp_core.live import LayerRecord, LiveExplanation, conservation_report

from .live_models import batch, relu_net


def per_sample(t: torch.Tensor) -> torch.Tensor:
    return t.double().reshape(t.shape[0], -1).sum(1)


def test_record_totals_agree_with_relevance_tensors():
    model = relu_net(bias=True)
    with LiveExplanation(model, batch(), EpsilonPlusFlat()) as live:
        result = live.explain(target=[0, 1, 2], keep_tensors=True)
    names = [str(i) for i in range(9)]
    assert list(result.records) == names  # forward order
    for name in names:
        record = result.records[name]
        assert torch.allclose(record.entering, per_sample(record.relevance_out), atol=1e-12)
        assert torch.allclose(record.leaving, per_sample(record.relevance_in), atol=1e-12)
        assert torch.allclose(record.channel_sums().sum(1), record.entering, atol=1e-12)
    for lower, upper in zip(names, names[1:], strict=False):
        assert torch.equal(result.records[upper].relevance_in, result.records[lower].relevance_out)
    assert torch.allclose(result.records["0"].leaving, per_sample(result.relevance), atol=1e-12)
    # the seed enters the last layer: one-hot rows times nothing else
    assert torch.allclose(result.records["8"].entering, torch.ones(3, dtype=torch.float64))


def test_tensors_kept_only_on_request():
    with LiveExplanation(relu_net(), batch(), EpsilonPlus()) as live:
        result = live.explain(target=0, keep_tensors=["2"])
    assert result.records["2"].relevance_out is not None
    assert result.records["0"].relevance_out is None
    with pytest.raises(RuntimeError, match="keep_tensors"):
        result.records["0"].channel_sums()
    top = result.records["2"].top_channels(2, sample=1)
    sums = result.records["2"].channel_sums()[1]
    assert [c for c, _ in top] == sums.argsort(descending=True)[:2].tolist()


def test_bias_free_relu_network_conserves():
    model = relu_net(bias=False)
    composite = EpsilonPlusFlat(epsilon=1e-12, stabilizer=1e-12)
    with LiveExplanation(model, batch(), composite) as live:
        result = live.explain(target=[0, 1, 2])
    report = result.conservation(tolerance=1e-6)
    assert report.ok, str(report)
    total_in = result.records["8"].entering
    assert torch.allclose(per_sample(result.relevance), total_in, rtol=1e-6)


class Doubling(BasicHook):
    """Broken on purpose: R_in = 2 · x ⊙ Jᵀ(R / stab(z)) creates relevance."""

    def __init__(self):
        super().__init__(reducer=lambda inputs, grads: 2 * inputs[0] * grads[0])


def test_broken_rule_is_named():
    model = relu_net(bias=False)
    composite = EpsilonPlusFlat(epsilon=1e-12, stabilizer=1e-12)
    with LiveExplanation(model, batch(), composite) as live:
        live.assign(Doubling(), name="2")
        result = live.explain(target=0)
    report = result.conservation(tolerance=1e-6)
    assert report.names == ["2"]
    assert report.violations[0].kind == "created"
    assert report.violations[0].relative == pytest.approx(0.5, rel=1e-4)  # |R - 2R| / |2R|
    assert "2: created" in str(report)


def record(name, entering, leaving, nonfinite=0):
    t = torch.tensor
    return LayerRecord(
        name, "X", "R", t(entering, dtype=torch.float64), t(leaving, dtype=torch.float64), nonfinite
    )


def test_conservation_report_classifies():
    records = {
        "same": record("same", [1.0, -2.0], [1.0, -2.0]),
        "lost": record("lost", [1.0, 1.0], [1.0, 0.9]),
        "created": record("created", [1.0, 1.0], [1.2, 1.0]),
        "tiny": record("tiny", [1e-15, 0.0], [0.0, 1e-14]),
        "nan": record("nan", [1.0], [math.nan], nonfinite=1),
    }
    report = conservation_report(records, tolerance=1e-3)
    kinds = {v.name: v.kind for v in report.violations}
    assert kinds == {"lost": "lost", "created": "created", "nan": "non-finite"}
    lost = next(v for v in report.violations if v.name == "lost")
    assert lost.relative == pytest.approx(0.1)
    assert conservation_report({"same": records["same"]}).ok


def test_absorbed_is_entering_minus_leaving():
    r = record("a", [2.0, 3.0], [1.5, 3.5])
    assert r.absorbed.tolist() == [0.5, -0.5]
    assert r.to_dict()["absorbed"] == [0.5, -0.5]


class _Residual(torch.nn.Module):
    """x -> head(lin1(x) + lin2(x)), the addition written in forward (no module sees it)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.lin1 = torch.nn.Linear(5, 5, bias=False)
        self.lin2 = torch.nn.Linear(5, 5, bias=False)
        self.head = torch.nn.Linear(5, 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.lin1(x) + self.lin2(x))


def test_relevance_copied_by_an_addition_outside_modules_is_reported():
    # every module conserves (bias-free Epsilon), but the residual '+' hands its full relevance
    # to both branches: the input receives 2x the seed, so 'unaccounted' = +1 per unit seed,
    # relative to max(|seed total|, |input total|) = 2: 0.5
    from lrp_core.live import OUTSIDE_MODULES
    from lrp_core.map_composites import LayerMapComposite
    from lrp_core.rules import Epsilon

    composite = LayerMapComposite([(torch.nn.Linear, Epsilon(epsilon=1e-12))])
    x = torch.rand(3, 5, dtype=torch.float64) + 0.1
    with LiveExplanation(_Residual().double().eval(), x, composite) as live:
        result = live.explain(0)
        report = result.conservation(1e-6)
    assert [v.name for v in report.violations] == [OUTSIDE_MODULES]
    (violation,) = report.violations
    assert violation.kind == "created"
    assert str(report).startswith("operations outside modules break conservation")
    assert violation.relative == pytest.approx(0.5, abs=1e-6)
    assert violation.entering == pytest.approx([1.0] * 3)  # the seed's totals
    assert violation.leaving == pytest.approx(per_sample(result.relevance).tolist())
    assert per_sample(result.relevance).tolist() == pytest.approx([2.0] * 3, abs=1e-6)


def test_a_plain_chain_has_nothing_outside_modules():
    model = relu_net(bias=True)
    with LiveExplanation(model, batch(), EpsilonPlusFlat()) as live:
        result = live.explain(1)
    # biases absorb relevance inside modules; the totals still add up: input = seed - absorbed
    absorbed = sum(record.absorbed for record in result.records.values())
    expected = per_sample(result.seed) - absorbed
    torch.testing.assert_close(per_sample(result.relevance), expected)
    assert "(outside modules)" not in result.conservation(1e-9).names


def test_non_finite_relevance_is_counted_and_reported():
    """Epsilon with ε = 0 on a unit whose output z is exactly 0 divides by zero: R/0 is inf (or
    NaN for R = 0). The record of that layer counts the NaN/inf elements of the tensor leaving it
    (and the layer below those entering it) as in the kept tensors, and the report names it."""
    from lrp_core import rules
    from lrp_core.composites import NameMapComposite

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    model = model.double().eval()
    with torch.no_grad():
        model[2].weight[1].zero_()
        model[2].bias[1] = 0.0  # unit 1 of the last layer: z = 0 for every input
    composite = NameMapComposite([(("0",), rules.Epsilon(1e-6)), (("2",), rules.Epsilon(0.0))])
    x = torch.randn(3, 4, dtype=torch.float64)
    with LiveExplanation(model, x, composite) as live:
        result = live.explain(target=torch.ones(3, 2, dtype=torch.float64), keep_tensors=True)

    def count(t: torch.Tensor) -> int:
        return int((~torch.isfinite(t)).sum())

    last, relu = result.records["2"], result.records["1"]
    assert last.nonfinite_entering == 0
    assert last.nonfinite_leaving == count(last.relevance_in) > 0
    assert relu.nonfinite_entering == count(relu.relevance_out) == last.nonfinite_leaving
    kinds = {v.name: v.kind for v in result.conservation().violations}
    assert kinds["2"] == "non-finite"
