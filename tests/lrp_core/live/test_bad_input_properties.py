"""Property test (issue 15): every public entry point of a live explanation, driven with
generated bad and edge inputs, either gives a result equal to a fresh computation or raises an
error of the project's own types that names the argument; in both cases the model (state dict,
parameter objects, hooks, training flags) is exactly as before and the live explanation stays
usable.

One example is a short sequence of calls (``assign``, ``set_params``, ``set_composite``,
``apply_config``, ``explain``) with generated arguments: rule and layer names (real, unknown, of
the wrong type), parameter values (NaN, ±inf, 1e300, 1e-300, huge integers, strings, lists,
tensors of random shapes), targets (huge, negative, numpy, lists, tensors) and configurations
(random JSON, and real ones with generated overrides). The fresh computation is an independent
path: ``lrp_core.attribution.Gradient`` with ``live.to_composite()`` on a copy of the model.
The examples are derandomized (the same ones every run).
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lrp_core.attribution import Gradient
from lrp_core.composites import COMPOSITES
from lrp_core.live import RULES, LiveExplanation, LiveResult

from .live_models import batch, relu_net

EXAMPLES = int(__import__("os").environ.get("LRP_PROPERTY_EXAMPLES", "30"))
LEAVES = ["0", "1", "2", "3", "4", "5", "6", "7", "8"]
PARAMETERS = ["epsilon", "gamma", "alpha", "beta", "low", "high", "stabilizer", "zero_params"]

#: calls made by the examples of the last run (reported by the summary test)
CALLS = {"total": 0, "results": 0, "errors": 0}

shapes = st.lists(st.integers(1, 9), min_size=0, max_size=4).map(tuple)
tensors = st.builds(
    lambda shape, fill: torch.full(shape, fill, dtype=torch.float64),
    shapes,
    st.floats(-1e40, 1e40) | st.sampled_from([np.nan, np.inf, -np.inf]),
)
values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e300, -1e300, 1e-300, 0.0, -1.0, 1e38, 3.5e38, 0.25, 2.0]),
    st.integers(-(2**80), 2**80),
    st.text(max_size=3),
    st.none(),
    st.booleans(),
    st.lists(st.floats(-10, 10), max_size=3),
    tensors,
)
rule_names = st.sampled_from([*RULES, "Gradient", "Nope", ""]) | st.integers(-3, 3)
layer_names = st.sampled_from([*LEAVES, "", "nope", "0.1"]) | st.integers(-3, 3)
params = st.dictionaries(st.sampled_from([*PARAMETERS, "bogus"]), values, max_size=3)
targets = st.one_of(
    st.integers(-(2**70), 2**70),
    st.integers(-2, 4),
    st.sampled_from([np.int64(1), np.int32(2), np.uint8(0), np.array([0, 1, 2])]),
    st.lists(st.integers(-2, 4), max_size=4),
    tensors,
    st.text(max_size=2),
    st.none(),
    st.floats(allow_nan=True),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
)


def _encoded(value):
    if isinstance(value, torch.Tensor):
        return {"tensor": value.tolist()}
    return value


@st.composite
def configs(draw) -> str | dict:
    """Random JSON, or a real configuration with generated overrides."""
    if draw(st.booleans()):
        return draw(json_values)
    entry = {"name": draw(layer_names), "rule": draw(rule_names)}
    entry["params"] = {k: _encoded(v) for k, v in draw(params).items()}
    config = {"format": "lrp_core.live", "version": 1, "canonizers": None, "overrides": [entry]}
    config["composite"] = {"name": draw(st.sampled_from([*COMPOSITES, "nope"])), "params": {}}
    return json.dumps(config, allow_nan=True) if draw(st.booleans()) else config


#: numbers at the edges of float32 (the model's dtype) for the parameters of real rules
edges = st.sampled_from([0.0, 1e-45, 1e-300, 0.25, 3.0, 1e38, 3.4e38, 1e39, 1e300, np.inf, np.nan])
edge_edits = st.builds(
    lambda rule, layer, value: ("assign", rule[0], layer, {rule[1]: value}),
    st.sampled_from([("Epsilon", "epsilon"), ("Gamma", "gamma"), ("AlphaBeta", "alpha")]),
    st.sampled_from(["0", "2", "6", "8"]),
    edges,
)

operations = st.one_of(
    edge_edits,
    st.tuples(st.just("explain"), st.integers(0, 2)),
    st.tuples(st.just("assign"), rule_names, layer_names, params),
    st.tuples(st.just("set_params"), layer_names, params),
    st.tuples(st.just("set_composite"), st.sampled_from([*COMPOSITES, "nope", None]), params),
    st.tuples(st.just("apply_config"), configs()),
    st.tuples(st.just("explain"), targets),
)


def call(live: LiveExplanation, operation: tuple) -> tuple[object, list[str]]:
    """Run one operation; returns its result and the words an error about it must contain
    (one of them)."""
    kind, *args = operation
    if kind == "assign":
        rule, name, keywords = args
        words = ["rule", "name", str(rule), str(name), *keywords]
        return (lambda: live.assign(rule, name=name, **keywords)), words
    if kind == "set_params":
        name, keywords = args
        words = ["name", str(name), "rule", "parameter", *keywords]
        return (lambda: live.set_params(name, **keywords)), words
    if kind == "set_composite":
        name, keywords = args
        words = ["composite", str(name), *keywords]
        return (lambda: live.set_composite(name, **keywords)), words
    if kind == "apply_config":
        words = ["config", "overrides", "composite", "<", "module", "layer"]
        return (lambda: live.apply_config(args[0])), words
    return (lambda: live.explain(args[0])), ["target"]


def new_model() -> torch.nn.Module:
    return relu_net(bias=True, dtype=torch.float32)


def fresh(live: LiveExplanation, seed: torch.Tensor) -> torch.Tensor:
    """Relevance by the attributor on a new copy of the model, with the live assignment."""
    with Gradient(new_model(), live.to_composite()) as attributor:
        return attributor(live.inputs, seed)[1]


def assert_equals_fresh(live: LiveExplanation, result: LiveResult) -> None:
    expected = fresh(live, result.seed)
    if not torch.isfinite(expected).all():  # values at the edge of float32: both overflow
        assert not torch.isfinite(result.relevance).all()
        return
    scale = float(expected.abs().max()) or 1.0
    torch.testing.assert_close(result.relevance, expected, rtol=1e-4, atol=1e-5 * scale)


def model_state(live: LiveExplanation) -> tuple:
    model = live.model
    return (
        {k: v.clone() for k, v in model.state_dict().items()},
        [id(p) for p in model.parameters()],
        [m.training for m in model.modules()],
        [(tuple(m._forward_hooks), tuple(m._forward_pre_hooks)) for m in model.modules()],
    )


def assert_same_state(live: LiveExplanation, before: tuple) -> None:
    tensors_now, *rest = model_state(live)
    assert list(tensors_now) == list(before[0])
    assert all(torch.equal(tensors_now[k], before[0][k]) for k in tensors_now)
    assert rest == list(before[1:])


class Session:
    """The live explanation under test and its model's state after construction."""

    def __init__(self, live: LiveExplanation, before: tuple):
        self.live, self.before = live, before

    def __repr__(self) -> str:
        return "Session(live explanation of relu_net)"


@pytest.fixture(scope="module")
def live():
    with LiveExplanation(new_model(), batch(dtype=torch.float32), "epsilon_plus_flat") as live:
        yield Session(live, model_state(live))


@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(operations, min_size=1, max_size=4))
def test_every_call_gives_a_fresh_result_or_a_clear_error_and_leaves_the_model(live, ops):
    live, before = live.live, live.before
    for operation in ops:
        action, words = call(live, operation)
        CALLS["total"] += 1
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = action()
        except Exception as error:  # noqa: BLE001 - the error is what is checked
            CALLS["errors"] += 1
            own = type(error).__module__.startswith("lrp_core")
            assert own or type(error) in (TypeError, ValueError), repr(error)
            message = str(error)
            named = getattr(error, "field", None) or any(word and word in message for word in words)
            assert named, (operation, message)
        else:
            CALLS["results"] += 1
            if isinstance(result, LiveResult):
                assert_equals_fresh(live, result)
        assert_same_state(live, before)
    assert_equals_fresh(live, live.explain(0))  # still usable, still right


def test_the_property_test_ran_its_cases():
    """Runs after the property test in this module: the count is reported by the summary."""
    assert CALLS["total"] >= EXAMPLES, CALLS
    assert CALLS["errors"] > 0 and CALLS["results"] > 0, CALLS
    print(f"property test: {CALLS}")
