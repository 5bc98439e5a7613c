"""Configuration as data: JSON round trips, validation naming the field, the Python snippet.

A round trip exports a live explanation's assignment, builds a new live explanation of an
identical model from the JSON alone, and must give the same effective rules (by class and
parameters) and the same relevance (to 1e-6).
"""

from __future__ import annotations

import copy
import json
import warnings

import pytest
import torch
from torch import nn

from lrp_core import rules
from lrp_core.attribution import Gradient
from lrp_core.composites import COMPOSITES, EpsilonGammaBox, EpsilonPlus
from lrp_core.core import Stabilizer
from lrp_core.live import (
    RULES,
    ConfigError,
    LiveExplanation,
    live_from_config,
    register_rule,
    to_config,
    unregister_rule,
)

from .live_models import batch, one_hot, relu_net

COMPOSITE_PARAMS = {"epsilon_gamma_box": {"low": -4.0, "high": 4.0}}

# one instance of every built-in rule with non-default parameters, and a module it fits
RULE_CASES = {
    "Epsilon": ("6", rules.Epsilon(epsilon=Stabilizer(1e-3, norm_scale=True))),
    "ZPlus": ("2", rules.ZPlus(stabilizer=1e-4, zero_params="bias")),
    "AlphaBeta": ("2", rules.AlphaBeta(alpha=3.0, beta=2.0)),
    "Gamma": ("2", rules.Gamma(gamma=0.75, zero_params=["bias"])),
    "ZBox": ("0", rules.ZBox(low=torch.full((2, 8, 8), -3.0, dtype=torch.float64), high=3.0)),
    "Flat": ("0", rules.Flat(stabilizer=1e-3)),
    "WSquare": ("8", rules.WSquare(stabilizer=1e-5)),
    "Norm": ("4", rules.Norm(stabilizer=1e-4)),
    "Pass": ("7", rules.Pass()),
    "ReLUDeconvNet": ("1", rules.ReLUDeconvNet()),
    "ReLUGuidedBackprop": ("3", rules.ReLUGuidedBackprop()),
    "ReLUBetaSmooth": ("1", rules.ReLUBetaSmooth(beta_smooth=3.0)),
}


def quiet_live(*args, **kwargs) -> LiveExplanation:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return LiveExplanation(*args, **kwargs)


def same_rules(a: LiveExplanation, b: LiveExplanation) -> None:
    for name, effective in a.assignment.effective_rules().items():
        other = b.rule_of(name)
        assert type(other.rule) is type(effective.rule), name
        assert other.rule == effective.rule, name
        assert other.origin == effective.origin, name


def round_trip(live: LiveExplanation, model: nn.Module, x: torch.Tensor) -> LiveExplanation:
    text = live.to_json()
    copy_live = live_from_config(model, x, json.loads(json.dumps(json.loads(text))))
    assert json.loads(copy_live.to_json()) == json.loads(text)
    same_rules(live, copy_live)
    expected = live.explain(target=[0, 1, 2]).relevance
    assert torch.allclose(copy_live.explain(target=[0, 1, 2]).relevance, expected, atol=1e-6)
    return copy_live


def test_all_built_in_rules_round_trip():
    assert set(RULE_CASES) == set(RULES)  # every registered built-in rule is covered
    model, twin, x = relu_net(bias=True), relu_net(bias=True), batch()
    live = LiveExplanation(model, x, EpsilonPlus())
    for name, (module, rule) in RULE_CASES.items():
        live.assign(rule, name=module)
        config = to_config(live)
        assert config["overrides"][-1]["rule"] == name
        round_trip(live, twin, x).close()
    live.close()


@pytest.mark.parametrize("name", sorted(COMPOSITES))
def test_all_composites_round_trip(name):
    model, twin, x = relu_net(bias=True), relu_net(bias=True), batch()
    params = COMPOSITE_PARAMS.get(name, {})
    live = quiet_live(model, x, COMPOSITES[name](**params))  # an object, not a name
    live.assign(rules.Epsilon(0.5), type="Linear")
    config = to_config(live)
    assert config["composite"]["name"] == name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        round_trip(live, twin, x).close()
    live.close()


def test_type_and_subtree_overrides_round_trip():
    model, twin, x = relu_net(), relu_net(), batch()
    with quiet_live(model, x, "epsilon_plus", composite_params={"epsilon": 0.01}) as live:
        live.assign("Gamma", type="types.Convolution", gamma=0.5)
        live.assign(None, within="6")
        live.assign("Flat", name="0")
        round_trip(live, twin, x).close()


class MyEpsilon(rules.Epsilon):
    """A custom rule (a subclass of an engine rule) registered under a name."""


@pytest.fixture
def my_epsilon():
    register_rule("MyEpsilon", MyEpsilon)
    yield
    unregister_rule("MyEpsilon")


def test_custom_rule_round_trips_after_registration(my_epsilon):
    model, twin, x = relu_net(), relu_net(), batch()
    with LiveExplanation(model, x, EpsilonPlus()) as live:
        live.assign("MyEpsilon", name="6", epsilon=0.3)
        assert to_config(live)["overrides"][0] == {
            "name": "6",
            "rule": "MyEpsilon",
            "params": {"epsilon": 0.3, "zero_params": None},
        }
        round_trip(live, twin, x).close()


def valid_config() -> dict:
    return {
        "format": "lrp_core.live",
        "version": 1,
        "composite": {"name": "epsilon_plus", "params": {"epsilon": 0.01}},
        "canonizers": None,
        "overrides": [{"name": "0", "rule": "Gamma", "params": {"gamma": 0.5}}],
    }


def broken(path: str, value) -> dict:
    """valid_config() with the entry at ``path`` (dotted, list indices as ints) replaced."""
    config = valid_config()
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    target = config
    for key in parents:
        target = target[key]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return config


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ("{not json", "<json>"),
        ([1, 2], "<root>"),
        (broken("format", "zennit"), "format"),
        (broken("version", 2), "version"),
        ({**valid_config(), "extra": 1}, "extra"),
        (broken("composite.name", "no_such_composite"), "composite.name"),
        (broken("composite.params.epsilon", -1.0), "composite.params.epsilon"),
        (broken("composite.params.gamma", 0.5), "composite.params.gamma"),
        (broken("composite", "epsilon_plus"), "composite"),
        (broken("canonizers", "no_such_set"), "canonizers"),
        (broken("overrides", {"name": "0"}), "overrides"),
        (broken("overrides.0", "Gamma"), "overrides[0]"),
        (broken("overrides.0.rule", "Gama"), "overrides[0].rule"),
        (broken("overrides.0.rule", KeyError), "overrides[0].rule"),
        (broken("overrides.0.params.gamma", -0.5), "overrides[0].params.gamma"),
        (broken("overrides.0.params.gamma", "big"), "overrides[0].params.gamma"),
        (broken("overrides.0.params.alpha", 2.0), "overrides[0].params.alpha"),
        (broken("overrides.0.params", [0.5]), "overrides[0].params"),
        (broken("overrides.0.params.zero_params", {"x": 1}), "overrides[0].params.zero_params"),
        (broken("overrides.0.name", "99"), "overrides[0].name"),
        (broken("overrides.0.name", "conv"), "overrides[0].name"),
        (broken("overrides.0.extra", 1), "overrides[0].extra"),
        (
            broken("overrides.0", {"type": "Conv3d", "rule": "Flat", "params": {}}),
            "overrides[0].type",
        ),
        (
            broken("overrides.0", {"within": "nope", "rule": "Flat", "params": {}}),
            "overrides[0].within",
        ),
        (
            broken("overrides.0", {"name": "0", "rule": "ZBox", "params": {"low": -1.0}}),
            "overrides[0].params",
        ),
    ],
)
def test_malformed_configs_are_rejected_naming_the_field(config, field):
    model, x = relu_net(), batch()
    with pytest.raises(ConfigError) as info:
        live_from_config(model, x, config if isinstance(config, str) else json.dumps(config))
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")
    # applying it to an existing live explanation also fails and leaves the assignment alone
    with LiveExplanation(model, x, EpsilonPlus()) as live:
        live.assign(rules.Flat(), name="0")
        before = live.to_json()
        with pytest.raises(ConfigError):
            live.apply_config(config if isinstance(config, str) else json.dumps(config))
        assert live.to_json() == before


def test_rule_that_cannot_apply_is_rejected_on_import():
    config = broken("overrides.0", {"name": "1", "rule": "ZBox", "params": {"low": 0, "high": 1}})
    with LiveExplanation(relu_net(), batch(), EpsilonPlus()) as live:
        with pytest.raises(ValueError, match="ZBox cannot apply to module '1'"):
            live.apply_config(config)
        assert live.rule_of("1").name == "Pass"


def test_snippet_builds_the_same_composite():
    model = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(256, 3)
    ).double()
    with torch.no_grad():
        model[1].running_mean.uniform_(-1, 1)
        model[1].running_var.uniform_(0.5, 2)
    model.eval()
    twin, x = copy.deepcopy(model), batch()
    live = LiveExplanation(
        model,
        x,
        "epsilon_gamma_box",
        composite_params={"low": -4.0, "high": 4.0, "gamma": 0.5},
        canonizers=__import__("lrp_core.live")
        .live.CANONIZERS["sequential_merge_batch_norm"]
        .factory(),
    )
    live.set_params("0", stabilizer=1e-3)
    live.assign(rules.ReLUGuidedBackprop(), name="2")
    live.assign(None, name="4")
    expected = live.explain(target=[2, 1, 0]).relevance
    code = live.to_code()
    assert "canonizers=[SequentialMergeBatchNorm()]" in code
    namespace: dict = {}
    exec(code, namespace)  # the test runs the generated source; the library never evaluates code
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, relevance = Gradient(twin, namespace["composite"])(x, one_hot([2, 1, 0], 3))
        _, from_object = Gradient(twin, live.to_composite())(x, one_hot([2, 1, 0], 3))
    assert torch.allclose(relevance, expected, atol=1e-6)
    assert torch.allclose(from_object, expected, atol=1e-6)
    live.close()


def test_unregistered_composite_or_custom_map_cannot_be_exported():
    with LiveExplanation(
        relu_net(), batch(), EpsilonPlus(layer_map=[(nn.ReLU, rules.Pass())])
    ) as live:
        with pytest.raises(ConfigError, match="composite.layer_map"):
            live.to_json()
    gamma_box = EpsilonGammaBox(low=-1.0, high=1.0)
    with quiet_live(relu_net(), batch(), gamma_box) as live:
        assert to_config(live)["composite"]["params"]["low"] == -1.0


def test_snippet_imports_rules_from_public_modules():
    """``Pass`` is defined in a private module; the generated source imports it from rules."""
    with LiveExplanation(relu_net(), batch(), "epsilon_plus_flat", eval_mode=True) as live:
        live.assign(rules.Pass(), name="1")
        code = live.to_code()
    assert "from lrp_core.rules import Pass" in code
    private = [line for line in code.splitlines() if line.startswith("from lrp_core._")]
    assert not private, private
    namespace: dict = {}
    exec(code, namespace)  # the generated source builds a composite that names Pass for "1"
    composite = namespace["composite"]
    assert isinstance(composite.composites[0].name_map[0][1], rules.Pass)
