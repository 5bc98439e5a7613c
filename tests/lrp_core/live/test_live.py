"""Live explanations: one forward pass, backward-only re-runs that equal fresh attributions.

Reference for every comparison: ``lrp_core.attribution.Gradient`` run from scratch (its own
forward pass) with a composite written out by hand in the test, seeded with one-hot rows
``eye(C)[targets]``; the live result must agree to 1e-6 (float64 networks).
"""

from __future__ import annotations

import copy
import json
import threading
import warnings

import pytest
import torch
from torch import nn

from lrp_core import rules
from lrp_core.attribution import Gradient
from lrp_core.composites import (
    COMPOSITES,
    EpsilonGammaBox,
    EpsilonPlus,
    EpsilonPlusFlat,
    MixedComposite,
    NameMapComposite,
)
from lrp_core.core import BasicHook, HookConflictError
from lrp_core.live import (
    LiveExplanation,
    LiveInputError,
    RuleFailedError,
    RuleNotApplicableError,
    TargetError,
    TrainingModeWarning,
)

from .live_models import ForwardCounter, batch, no_hooks_left, one_hot, relu_net

COMPOSITE_PARAMS = {"epsilon_gamma_box": {"low": -4.0, "high": 4.0}}


def fresh(twin, composite, x, seed):
    """Relevance from scratch: Gradient with its own forward pass (the independent reference),
    on ``twin``, an untouched copy of the model (the live explanation owns the original)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Gradient(twin, composite)(x, seed)[1]


@pytest.fixture
def model():
    return relu_net(bias=True)


@pytest.fixture
def twin(model):
    return copy.deepcopy(model)


def test_one_forward_for_every_kind_of_change(model):
    """The model runs once; no change of rules, parameters, composite or target runs it again."""
    counter = ForwardCounter(model)
    x = batch()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        live = LiveExplanation(model, x, EpsilonPlus())
    changes = [
        lambda: live.explain(target=1),
        lambda: live.assign(rules.Flat(), name="0"),
        lambda: live.assign("Gamma", type="Conv2d", gamma=0.5),
        lambda: live.assign(rules.Pass(), type="ReLU", within="3"),
        lambda: live.set_params("2", gamma=0.1),
        lambda: live.remove_override(type="Conv2d"),
        lambda: live.assign(None, name="6"),
        lambda: live.clear_overrides(),
        lambda: live.set_composite("epsilon_alpha2_beta1"),
        lambda: live.set_composite(EpsilonGammaBox(low=-4.0, high=4.0), keep_overrides=False),
        lambda: live.explain(target=[0, 1, 2]),
        lambda: live.explain(target=torch.rand(3, 3, dtype=torch.float64)),
        lambda: live.explain(target=lambda out: out.softmax(1)),
        lambda: live.explain_top_k(2),
        lambda: live.explain_grid([0, 2], [None, live.assignment.copy()]),
        lambda: live.apply_config(live.to_json()),
        lambda: live.describe(),
    ]
    for change in changes:
        change()
        assert counter.count == 1
        assert live.forward_count == 1
        assert live.explain(target=0) is not None
        assert counter.count == 1
    live.set_inputs(batch(seed=5))
    assert counter.count == live.forward_count == 2
    live.close()


def test_rerun_after_changes_equals_fresh_attribution(model, twin):
    x = batch()
    seed = one_hot([2, 0, 1], 3)
    live = LiveExplanation(model, x, EpsilonPlus(epsilon=1e-3))
    first = live.explain(target=[2, 0, 1]).relevance
    assert torch.allclose(first, fresh(twin, EpsilonPlus(epsilon=1e-3), x, seed), atol=1e-6)

    live.assign(rules.Flat(), name="0")
    live.assign(rules.Gamma(gamma=0.5), name="2")
    live.set_params("6", epsilon=0.25)
    rerun = live.explain(target=[2, 0, 1]).relevance
    reference = MixedComposite(
        [
            NameMapComposite(
                [
                    (("0",), rules.Flat()),
                    (("2",), rules.Gamma(gamma=0.5)),
                    (("6",), rules.Epsilon(epsilon=0.25)),
                ]
            ),
            EpsilonPlus(epsilon=1e-3),
        ]
    )
    assert torch.allclose(rerun, fresh(twin, reference, x, seed), atol=1e-6)
    assert not torch.allclose(rerun, first, atol=1e-3)  # the change mattered

    live.remove_override(name="2")  # back to the composite's ZPlus
    live.set_params("0", stabilizer=1e-2)
    again = live.explain(target=[2, 0, 1]).relevance
    reference = MixedComposite(
        [
            NameMapComposite(
                [(("0",), rules.Flat(stabilizer=1e-2)), (("6",), rules.Epsilon(epsilon=0.25))]
            ),
            EpsilonPlus(epsilon=1e-3),
        ]
    )
    assert torch.allclose(again, fresh(twin, reference, x, seed), atol=1e-6)
    assert live.forward_count == 1
    live.close()


@pytest.mark.parametrize("name", sorted(COMPOSITES))
def test_every_composite_equals_fresh_attribution(model, twin, name):
    x = batch()
    params = COMPOSITE_PARAMS.get(name, {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        live = LiveExplanation(model, x, name, composite_params=params)
    result = live.explain(target=1)
    reference = fresh(twin, COMPOSITES[name](**params), x, one_hot([1, 1, 1], 3))
    assert torch.allclose(result.relevance, reference, atol=1e-6)
    live.close()


def test_targets_top_k_weighting_and_grid(model, twin):
    x = batch()
    live = LiveExplanation(model, x, EpsilonPlus())
    output = twin(x)
    top = output.topk(2, dim=1).indices
    for rank, result in enumerate(live.explain_top_k(2)):
        expected = fresh(twin, EpsilonPlus(), x, one_hot(top[:, rank].tolist(), 3))
        assert torch.allclose(result.relevance, expected, atol=1e-6)
    weights = torch.rand(3, 3, dtype=torch.float64)
    weighted = live.explain(target=weights).relevance
    assert torch.allclose(weighted, fresh(twin, EpsilonPlus(), x, weights), atol=1e-6)
    # None: the predicted class of each sample
    predicted = live.explain().relevance
    seed = one_hot(output.argmax(1).tolist(), 3)
    assert torch.allclose(predicted, fresh(twin, EpsilonPlus(), x, seed), atol=1e-6)

    other = live.assignment.copy()
    other.assign(rules.ZPlus(), type="Linear")
    grid = live.explain_grid([0, 2], [None, other])
    mixed = MixedComposite([NameMapComposite([(("6", "8"), rules.ZPlus())]), EpsilonPlus()])
    for row, composite in zip(grid, (EpsilonPlus(), mixed), strict=True):
        for result, target in zip(row, (0, 2), strict=True):
            expected = fresh(twin, composite, x, one_hot([target] * 3, 3))
            assert torch.allclose(result.relevance, expected, atol=1e-6)
    assert live.forward_count == 1
    live.close()


def test_cached_modified_forwards_are_reused(model):
    """After changing one layer only that layer's modified forward runs again (cache misses)."""
    live = LiveExplanation(model, batch(), EpsilonPlusFlat())
    live.explain(target=0)
    misses = live._cache.misses
    live.set_params("6", epsilon=0.5)
    live.explain(target=0)
    assert live._cache.misses == misses + 1
    live.close()


def test_module_used_twice_records_both_calls():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(4, 4, bias=False).double()
            self.relu = nn.ReLU()
            self.out = nn.Linear(4, 2, bias=False).double()

        def forward(self, x):
            return self.out(self.relu(self.linear(self.relu(self.linear(x)))))

    torch.manual_seed(0)
    model = Twice().eval()
    twin = copy.deepcopy(model)
    x = torch.randn(2, 4, dtype=torch.float64)
    composite = EpsilonPlus()
    live = LiveExplanation(model, x, composite)
    result = live.explain(target=0)
    assert result.records["linear"].calls == 2 and result.records["relu"].calls == 2
    assert torch.allclose(
        result.relevance, fresh(twin, EpsilonPlus(), x, one_hot([0, 0], 2)), atol=1e-6
    )
    live.close()


# --- superseded requests ---
class _Probe(BasicHook):
    """Epsilon-like rule that runs ``action`` when its module's relevance is computed."""

    def __init__(self, action):
        super().__init__()
        self.action = action

    def _relevance(self, call, grad_outputs):
        self.action()
        return super()._relevance(call, grad_outputs)


def test_request_arriving_mid_pass_stops_the_old_one(model):
    live = LiveExplanation(model, batch(), EpsilonPlus())
    good = live.explain(target=0)
    reached = []
    live.assign(_Probe(lambda: (reached.append(1), live.request())), name="6")
    assert live.explain(target=1) is None  # stopped between layers
    assert reached == [1]
    assert live.last_result is good
    # layers below "6" never ran for the stopped request: no record beyond it was stored
    assert live.last_result.generation == good.generation
    live.assign(rules.Epsilon(), name="6")
    newest = live.explain(target=1)
    assert newest is not None and live.last_result is newest
    live.close()


def test_stale_generation_is_dropped_before_computing(model):
    live = LiveExplanation(model, batch(), EpsilonPlus())
    calls = []
    live.assign(_Probe(lambda: calls.append(1)), name="6")
    old, new = live.request(), live.request()
    assert live.explain(target=0, generation=old) is None
    assert calls == []
    assert live.explain(target=0, generation=new).generation == new
    live.close()


def test_superseded_in_another_thread_never_returns_stale(model):
    live = LiveExplanation(model, batch(), EpsilonPlus())
    entered, release = threading.Event(), threading.Event()

    def block():
        if not entered.is_set():
            entered.set()
            assert release.wait(10)

    live.assign(_Probe(block), name="8")
    results = {}
    generation = live.request()
    worker = threading.Thread(
        target=lambda: results.setdefault("old", live.explain(target=0, generation=generation))
    )
    worker.start()
    assert entered.wait(10)
    newer = live.request()  # arrives while the old computation is inside the backward pass
    release.set()
    worker.join(10)
    assert results["old"] is None
    fresh_result = live.explain(target=0, generation=newer)
    assert fresh_result.generation == newer and live.last_result is fresh_result
    live.close()


# --- bad input ---
def test_bad_inputs_are_named_and_keep_previous_state(model):
    x = batch()
    live = LiveExplanation(model, x, EpsilonPlus())
    good = live.explain(target=0)
    with pytest.raises(LiveInputError, match="inputs.*shape"):
        live.set_inputs(torch.randn(2, 3, 8, 8, dtype=torch.float64))
    with pytest.raises(TypeError, match="inputs: dtype torch.float32"):
        live.set_inputs(x.float())
    with pytest.raises(TypeError, match="inputs: dtype torch.int64"):
        live.set_inputs(x.long())
    nan = x.clone()
    nan[0, 0, 0, 0] = float("nan")
    with pytest.raises(LiveInputError, match="NaN or inf"):
        live.set_inputs(nan)
    with pytest.raises(TargetError, match="target: class index 3 is out of range"):
        live.explain(target=3)
    with pytest.raises(TargetError, match="target"):
        live.explain(target=[0, 1])
    assert live.last_result is good
    assert torch.equal(live.explain(target=0).relevance, good.relevance)
    assert live.forward_count == 1
    live.close()


def test_rule_that_cannot_apply_is_rejected_naming_the_module(model):
    live = LiveExplanation(model, batch(), EpsilonPlus())
    before = live.rule_of("1")
    with pytest.raises(RuleNotApplicableError, match="ZBox.*'1'.*ReLU"):
        live.assign(rules.ZBox(-1.0, 1.0), name="1")
    with pytest.raises(RuleNotApplicableError, match="Pass.*'6'.*Linear"):
        live.assign(rules.Pass(), name="6")
    assert live.rule_of("1") == before
    assert live.explain(target=0) is not None
    live.close()


def test_validation_rechecks_every_changed_rule(model):
    """Explain validates the assignment every time, re-checking only modules whose rule changed
    since the last check: a bad rule is rejected after many good passes, in the live assignment
    and in one given to ``explain``, and the live explanation keeps working."""
    live = LiveExplanation(model, batch(), EpsilonPlus())
    for target in range(3):
        live.explain(target=target)
    live.set_params("0", stabilizer=0.5)
    live.explain(target=0)
    with pytest.raises(RuleNotApplicableError, match="ZBox.*'1'.*ReLU"):
        live.assign(rules.ZBox(-1.0, 1.0), name="1")
    other = live.assignment.copy()
    other.assign(rules.Pass(), name="6")
    with pytest.raises(RuleNotApplicableError, match="Pass.*'6'.*Linear"):
        live.explain(target=0, assignment=other)
    with pytest.raises(RuleNotApplicableError, match="Pass.*'6'.*Linear"):
        live.explain(target=0, assignment=other)  # still rejected when asked again
    assert live.explain(target=0) is not None
    live.close()


def test_rule_failing_in_backward_names_the_module(model):
    live = LiveExplanation(model, batch(), EpsilonPlus())
    good = live.explain(target=0)

    def fail():
        raise ArithmeticError("broken on purpose")

    live.assign(_Probe(fail), name="2")
    with pytest.raises(RuleFailedError, match="module '2'.*broken on purpose"):
        live.explain(target=0)
    assert live.last_result is good
    live.clear_overrides()
    assert torch.equal(live.explain(target=0).relevance, good.relevance)
    live.close()


def test_training_mode_warns_and_eval_mode_is_restored():
    model = relu_net().train()
    with pytest.warns(TrainingModeWarning, match="training mode"):
        LiveExplanation(model, batch(), EpsilonPlus()).close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with LiveExplanation(model, batch(), EpsilonPlus(), eval_mode=True) as live:
            assert not model.training
            live.explain(target=0)
    assert model.training and all(m.training for m in model.modules())


# --- lifetime ---
def test_close_restores_the_model_bit_identically():
    from lrp_widgets.demo import demo_canonizers, load_model, make_batch

    from ..model_state import snapshot

    model = load_model()
    before = snapshot(model)
    images, _, _ = make_batch(2, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with LiveExplanation(model, images, EpsilonPlusFlat(canonizers=demo_canonizers())) as live:
            assert "block.canonizer_sum" in dict(model.named_modules())
            live.assign("Gamma", type="Conv2d", gamma=0.5)
            live.explain(target=1)
    after = model.state_dict()
    assert list(after) == list(before)
    assert all(torch.equal(after[k], v) for k, v in before.items())
    assert "block.canonizer_sum" not in dict(model.named_modules())
    assert no_hooks_left(model)


def test_failed_construction_leaves_nothing_behind(model):
    with pytest.raises(LiveInputError):
        LiveExplanation(model, torch.randn(1, 5, 8, 8, dtype=torch.float64), EpsilonPlus())
    assert no_hooks_left(model)


def test_describe_is_json_with_shapes_rules_and_origins(model):
    live = LiveExplanation(model, batch(), EpsilonPlus())
    live.assign(rules.Flat(), name="0")
    tree = json.loads(json.dumps(live.describe()))
    nodes = {}

    def walk(node):
        nodes[node["name"]] = node
        for child in node["children"]:
            walk(child)

    walk(tree)
    assert set(nodes) == {name for name, _ in model.named_modules()}
    assert nodes[""]["leaf"] is False and nodes["0"]["leaf"] is True
    assert nodes["0"]["output_shapes"] == [[3, 4, 8, 8]]
    assert nodes["5"]["input_shapes"] == [[3, 4, 4, 4]] and nodes["5"]["output_shapes"] == [[3, 64]]
    assert nodes["0"]["params"] == 2 * 4 * 9 + 4
    assert nodes["0"]["rule"] == {
        "name": "Flat",
        "params": {"stabilizer": 1e-6, "zero_params": None},
        "origin": "override",
    }
    assert nodes["2"]["rule"]["origin"] == "composite" and nodes["2"]["rule"]["name"] == "ZPlus"
    assert nodes["5"]["rule"] == {
        "name": "Gradient",
        "params": {},
        "origin": "gradient",
    }  # Flatten: intended
    live.close()


def test_plain_gradient_fallbacks_are_reported():
    from lrp_core.composites import PlainGradientFallbackWarning

    model = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.LayerNorm(4), nn.Linear(4, 2))
    model = model.double().eval()
    with pytest.warns(PlainGradientFallbackWarning, match=r"2 \(LayerNorm\)"):
        live = LiveExplanation(model, torch.randn(2, 4, dtype=torch.float64), EpsilonPlus())
    assert live.rule_of("2").origin == "fallback" and live.rule_of("2").name == "Gradient"
    assert live.rule_of("1").origin == "composite"  # Tanh is an activation: Pass
    live.close()


@pytest.mark.parametrize(
    "make",
    [
        lambda c: EpsilonPlusFlat(canonizers=c),
        lambda c: EpsilonGammaBox(low=-1.0, high=1.0, canonizers=c),
    ],
)
def test_demo_model_with_canonizers_equals_fresh_attribution(make):
    """The demo model (batch norms merged, residual Sum) in float32: agreement to 1e-6 relative
    to the largest relevance value."""
    from lrp_widgets.demo import demo_canonizers, load_model, make_batch

    model = load_model()
    twin = copy.deepcopy(model)
    images, _, _ = make_batch(2, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        live = LiveExplanation(model, images, make(demo_canonizers()))
    live.set_params("features.4", stabilizer=1e-4)
    result = live.explain(target=[1, 3]).relevance
    live.close()
    override = NameMapComposite([(("features.4",), live.rule_of("features.4").rule)])
    reference = fresh(
        twin, MixedComposite([override, make(demo_canonizers())]), images, torch.eye(5)[[1, 3]]
    )
    scale = float(reference.abs().max())
    assert torch.allclose(result, reference, atol=1e-6 * scale, rtol=0)


def test_in_place_activations_give_the_same_relevance():
    """ReLU(inplace=True) must not corrupt the kept inputs: same result as ReLU()."""
    plain = relu_net(bias=True)
    in_place = copy.deepcopy(plain)
    for index in (1, 3, 7):
        in_place[index] = nn.ReLU(inplace=True)
    x = batch()
    results = []
    for model in (plain, in_place):
        with LiveExplanation(model, x, EpsilonGammaBox(low=-4.0, high=4.0)) as live:
            live.explain(target=2)
            live.set_params("2", gamma=0.5)
            results.append(live.explain(target=2).relevance)
    assert torch.allclose(results[0], results[1], atol=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_live_on_cuda_with_class_lists_matches_cpu():
    # targets given as Python ints or lists are placed on the output's device
    torch.manual_seed(0)
    model = (
        torch.nn.Sequential(
            torch.nn.Conv2d(3, 4, 3),
            torch.nn.ReLU(),
            torch.nn.Flatten(),
            torch.nn.Linear(4 * 36, 5),
        )
        .double()
        .eval()
    )
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    results = []
    for device in ("cpu", "cuda"):
        with LiveExplanation(model.to(device), x.to(device), "EpsilonPlusFlat") as live:
            results.append([live.explain(t).relevance.cpu() for t in ([1, 3], 2)])
    for cpu, cuda in zip(*results, strict=True):
        torch.testing.assert_close(cpu, cuda)


def test_second_live_explanation_on_the_same_model_is_refused_cleanly():
    model = relu_net()
    x = batch()
    with LiveExplanation(model, x, EpsilonPlusFlat()) as first:
        before = first.explain(0).relevance
        state = copy.deepcopy(model.state_dict())
        with pytest.raises(HookConflictError, match="already being explained live"):
            LiveExplanation(model, x, EpsilonPlusFlat(), eval_mode=True)
        assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
        assert torch.equal(first.explain(0).relevance, before)  # the first one still works
    with LiveExplanation(model, x, EpsilonPlusFlat()) as again:  # free again after close
        assert torch.equal(again.explain(0).relevance, before)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("composite", ["EpsilonPlusFlat", "EpsilonGammaBox"])
def test_live_reruns_on_cuda_match_cpu(composite: str):
    # the closed-form terms, their cache and the re-use after a parameter change, on CUDA
    params = {"low": -4.0, "high": 4.0} if composite == "EpsilonGammaBox" else {}
    results = []
    for device in ("cpu", "cuda"):
        model = relu_net(bias=True).to(device)
        with LiveExplanation(model, batch().to(device), composite, composite_params=params) as live:
            runs = [live.explain(target=2).relevance]
            for value in (0.1, 0.7, 0.3):
                key = "gamma" if composite == "EpsilonGammaBox" else "stabilizer"
                live.set_params("2", **{key: value})
                runs.append(live.explain(target=[0, 1, 2]).relevance)
            results.append([r.cpu() for r in runs])
    for cpu, cuda in zip(*results, strict=True):
        torch.testing.assert_close(cpu, cuda, rtol=1e-9, atol=1e-12)
