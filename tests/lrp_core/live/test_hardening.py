"""Hardening of live explanations (issue 15): a failed call leaves nothing behind, a bad value
never jams the assignment, and no explanation mixes two assignments.

- constructor: an exception or ``KeyboardInterrupt`` at every step (canonizer merges, hook
  registrations, module forwards) leaves the model bit-identical (``ModelState``);
- backward: a rule failing at its n-th call, for every n of a pass, leaves the assignment and
  ``last_result`` as they were, and the next explanation is right;
- values: numbers the model's dtype cannot hold and input bounds of the wrong shape are refused
  at assignment (by ``assign``, ``set_params`` and ``apply_config``) naming parameter, layer and
  range; the assignment stays as it was;
- races: threads editing and explaining at once; every result is one of the configurations;
- edges and lifecycle: numpy and huge integer targets, empty batches, deep configurations,
  training-mode buffers, calls after ``close()``.
"""

from __future__ import annotations

import json
import os
import time
import warnings

import numpy as np
import pytest
import torch

from lrp_core.canonizers import MergeBatchNorm, SequentialMergeBatchNorm
from lrp_core.core import Hook
from lrp_core.live import (
    ConfigError,
    LiveExplanation,
    LiveInputError,
    RuleParameterError,
    TargetError,
    TrainingModeWarning,
    register_rule,
    unregister_rule,
)
from lrp_core.rules import ZBox

from ..faults import Fault, FaultyEpsilon, Plan, bn_batch, bn_net, steps
from ..model_state import ModelState
from .live_models import batch, relu_net
from .threads import run_threads

#: seconds of the thread stress test (the issue asks for 10; LRP_STRESS_SECONDS changes it)
STRESS_SECONDS = float(os.environ.get("LRP_STRESS_SECONDS", "10"))


def open_live(model, x) -> LiveExplanation:
    return LiveExplanation(
        model, x, "epsilon_plus_flat", canonizers=[SequentialMergeBatchNorm()], eval_mode=True
    )


@pytest.mark.parametrize("exception", [Fault, KeyboardInterrupt])
def test_a_failure_at_any_step_of_the_constructor_leaves_the_model_as_it_was(exception):
    model, x = bn_net().train(), bn_batch()  # training mode: eval_mode must be undone too
    before = ModelState(model)
    methods = [(MergeBatchNorm, "register"), (Hook, "register")]
    with steps(Plan(), methods) as counted:
        open_live(model, x).close()
    before.assert_same(model)
    for n in range(1, counted.calls + 1):
        with steps(Plan(n, exception), methods):  # a failing forward becomes LiveInputError
            with pytest.raises((exception, LiveInputError), match=f"injected at step {n}"):
                open_live(model, x)
        before.assert_same(model)
    with open_live(model, x) as live:
        assert live.explain(0).relevance.shape == x.shape
    before.assert_same(model)


@pytest.mark.parametrize("exception", [Fault, KeyboardInterrupt])
def test_a_rule_failing_at_any_call_of_a_backward_pass_changes_nothing(exception):
    model, x = bn_net(), bn_batch()
    before = ModelState(model)
    with open_live(model, x) as live:
        FaultyEpsilon.plan = Plan()
        live.assign(FaultyEpsilon(1e-3), type="types.Linear")
        expected = live.explain(1)
        calls = FaultyEpsilon.plan.calls
        assert calls == 3
        rules = live.to_json()
        for n in range(1, calls + 1):
            FaultyEpsilon.plan = Plan(n, exception)
            with pytest.raises((exception, RuntimeError), match=f"injected at step {n}"):
                live.explain(1)
            assert live.last_result is expected and live.to_json() == rules
        FaultyEpsilon.plan = Plan()
        torch.testing.assert_close(live.explain(1).relevance, expected.relevance, rtol=0, atol=0)
    before.assert_same(model)


# --- values the model cannot compute with ---
FLOAT32_CASES = [
    ("Gamma", {"gamma": 1e300}, "gamma", "overflows torch.float32"),
    ("Gamma", {"gamma": 1e39}, "gamma", "overflows torch.float32"),
    ("Epsilon", {"epsilon": 1e-300}, "epsilon", "rounds it to 0"),
    ("ZBox", {"low": torch.zeros(5), "high": torch.ones(5)}, "low", "does not broadcast"),
    ("ZBox", {"low": -1.0, "high": torch.full((8, 8), 1e39, dtype=torch.float64)}, "high", "inf"),
]


VALID = {"Gamma": {"gamma": 0.25}, "Epsilon": {}, "ZBox": {"low": -1.0, "high": 1.0}}


@pytest.fixture(autouse=True)
def faulty_rule_registered():
    register_rule("FaultyEpsilon", FaultyEpsilon)
    yield
    unregister_rule("FaultyEpsilon")


@pytest.mark.parametrize(("rule", "params", "param", "why"), FLOAT32_CASES)
@pytest.mark.parametrize("route", ["assign", "set_params", "apply_config"])
def test_a_value_the_model_cannot_compute_with_is_refused_and_nothing_changes(
    rule, params, param, why, route
):
    """Before: ``gamma=1e300`` was kept (float32 turns it into inf: NaN relevance, or every
    later edit failing) and a ZBox bound of the wrong shape failed at every explanation."""
    model, x = relu_net(dtype=torch.float32), batch(dtype=torch.float32)
    with LiveExplanation(model, x, "epsilon_plus_flat") as live:
        if route == "set_params":
            live.assign(rule, name="0", **VALID[rule])
        before, result = live.to_json(), live.explain(0)
        with pytest.raises(RuleParameterError) as caught:
            if route == "assign":
                live.assign(rule, name="0", **params)
            elif route == "set_params":
                live.set_params("0", **{param: params[param]})
            else:
                config = json.loads(before)
                config["overrides"].append({"name": "0", "rule": rule, "params": _encoded(params)})
                live.apply_config(config)
        message = str(caught.value)
        assert caught.value.param == param and why in message
        assert f"{param} " in message and "layer '0' (Conv2d)" in message
        assert live.to_json() == before and live.last_result is result
        live.assign("Epsilon", name="6", epsilon=0.1)  # later edits work
        assert torch.isfinite(live.explain(0).relevance).all()


def _encoded(params: dict) -> dict:
    return {
        k: {"tensor": v.tolist()} if isinstance(v, torch.Tensor) else v for k, v in params.items()
    }


def test_values_the_dtype_holds_are_accepted():
    """The checks follow the model's dtype: float64 holds 1e300; bounds shaped like one input
    or the whole batch broadcast."""
    model, x = relu_net(dtype=torch.float64), batch(dtype=torch.float64)
    with LiveExplanation(model, x, "epsilon_plus_flat") as live:
        live.assign("Gamma", name="2", gamma=1e300)
        live.assign("ZBox", name="0", low=torch.full((2, 8, 8), -3.0), high=x.abs().max())
        live.assign("ZBox", name="0", low=x - 1, high=x + 1)
        live.explain(0)


def test_a_zbox_bound_shaped_for_one_layer_is_refused_on_another():
    model, x = relu_net(dtype=torch.float64), batch(dtype=torch.float64)
    with LiveExplanation(model, x, "epsilon_plus_flat") as live:
        bounds = {"low": torch.zeros(2, 8, 8, dtype=torch.float64), "high": 1.0}
        with pytest.raises(RuleParameterError, match=r"layer '2'.*\(4, 8, 8\)|layer '2'.*shape"):
            live.assign("ZBox", name="2", **bounds)
        with pytest.raises(RuleParameterError, match="layer '2'"):
            live.assign(ZBox(**bounds), type="Conv2d")  # one bad layer refuses the whole edit
        assert live.rule_of("0").name == "Flat"


# --- races ---
EPSILONS = (0.001, 0.1, 1.0)


def configurations(live: LiveExplanation) -> list[torch.Tensor]:
    """Relevance of class 0 with Epsilon(ε) on every linear layer, for each ε, one at a time."""
    results = []
    for epsilon in EPSILONS:
        live.assign("Epsilon", type="types.Linear", epsilon=epsilon)
        results.append(live.explain(0).relevance)
    return results


def test_edits_racing_explanations_never_mix_two_configurations():
    """Two threads set the ε of all four linear layers at once (one edit, so every state in
    between is one of the configurations) while two threads explain; each result must equal the
    relevance of one configuration exactly. Before: about 60% matched none (a pass read some
    layers' rules before an edit and the others after it)."""
    model, x = relu_net(dtype=torch.float64), batch(dtype=torch.float64)
    with LiveExplanation(model, x, "epsilon_plus_flat") as live:
        values = configurations(live)
        gaps = [float((p - q).abs().max()) for i, p in enumerate(values) for q in values[i + 1 :]]
        assert min(gaps) > 1e-3  # every configuration is told apart (|relevance| up to ~3)
        stop = time.monotonic() + STRESS_SECONDS
        results = []

        def edit(seed: int) -> None:
            rng = np.random.default_rng(seed)
            while time.monotonic() < stop:
                epsilon = float(rng.choice(EPSILONS))
                live.assign("Epsilon", type="types.Linear", epsilon=epsilon)

        def explain() -> None:
            while time.monotonic() < stop:
                generation = live.request()
                result = live.explain(0, generation=generation)
                if result is not None:
                    results.append(result.relevance)

        errors = run_threads((edit, 0), (edit, 1), (explain,), (explain,))
    assert not errors
    assert len(results) > 10
    mixed = [
        r for r in results if not any(torch.allclose(r, v, rtol=1e-12, atol=0) for v in values)
    ]
    assert not mixed, f"{len(mixed)} of {len(results)} results match no configuration"


# --- edges ---
@pytest.mark.parametrize(
    "target", [np.int64(2), np.int32(2), np.array([2, 2, 2]), [np.int64(2)] * 3, torch.tensor(2)]
)
def test_numpy_integer_targets_are_class_indices(target):
    """Before: numpy integers were refused here but accepted by the Explorer."""
    model, x = relu_net(), batch()
    with LiveExplanation(model, x, "epsilon_plus_flat") as live:
        torch.testing.assert_close(live.explain(target).relevance, live.explain(2).relevance)


@pytest.mark.parametrize("target", [2**70, -(2**70), [0, 1, 2**64], np.uint64(2**63)])
def test_huge_class_indices_are_a_target_error(target):
    """Before: 2**70 raised a raw OverflowError from torch."""
    with LiveExplanation(relu_net(), batch(), "epsilon_plus_flat") as live:
        with pytest.raises(TargetError, match="target: class index .* is out of range"):
            live.explain(target)


def test_an_empty_batch_is_refused_and_leaves_nothing():
    model = bn_net()
    before = ModelState(model)
    with pytest.raises(LiveInputError, match="inputs: an empty batch"):
        open_live(model, bn_batch()[:0])
    before.assert_same(model)


@pytest.mark.parametrize("depth", [40, 5000])
def test_a_deeply_nested_configuration_is_a_config_error(depth):
    """Before: thousands of levels raised RecursionError."""
    with LiveExplanation(relu_net(), batch(), "epsilon_plus_flat") as live:
        before = live.to_json()
        with pytest.raises(ConfigError, match="nested deeper than"):
            live.apply_config("[" * depth + "]" * depth)
        nested: dict = {"format": "lrp_core.live", "version": 1, "overrides": []}
        entry = nested
        for _ in range(depth):
            entry["composite"] = {}
            entry = entry["composite"]
        with pytest.raises(ConfigError, match="nested deeper than"):
            live.apply_config(nested)
        assert live.to_json() == before


def test_a_model_in_training_mode_keeps_its_batch_norm_buffers():
    """Before: the live forward updated running statistics and ``num_batches_tracked``."""
    model = bn_net().train()
    before = ModelState(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrainingModeWarning)
        with LiveExplanation(model, bn_batch(), "epsilon_plus_flat") as live:
            live.explain(0)
            live.set_inputs(bn_batch(3, seed=2))
            live.explain(0)
    before.assert_same(model)


@pytest.mark.parametrize(
    "call",
    [
        lambda live: live.inputs,
        lambda live: live.output,
        lambda live: live.set_params("6", epsilon=0.1),
        lambda live: live.assign("Epsilon", name="6"),
        lambda live: live.apply_config(live_config()),
        lambda live: live.set_composite("epsilon_plus"),
        lambda live: live.explain(0),
        lambda live: live.explain_top_k(2),
    ],
)
def test_every_call_after_close_says_so(call):
    """Before: ``set_params`` was accepted silently and ``inputs`` raised AttributeError."""
    live = LiveExplanation(relu_net(), batch(), "epsilon_plus_flat")
    live.close()
    with pytest.raises(RuntimeError, match="was closed"):
        call(live)


def live_config() -> str:
    with LiveExplanation(relu_net(), batch(), "epsilon_plus_flat") as live:
        return live.to_json()
