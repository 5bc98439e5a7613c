"""Rule assignment: composite defaults, overrides by name / type / subtree, origins.

Precedence under test: the last matching override wins, then the composite's rule, then the
plain gradient: "gradient" where that is intended (flatten, max pooling, gradient-only
composites), "fallback" where an LRP composite has no rule for a module that computes something.
"""

from __future__ import annotations

import pytest
from torch import nn

from lrp_core import rules
from lrp_core.composites import EpsilonPlus
from lrp_core.live import (
    AssignmentError,
    RuleAssignment,
    RuleNotApplicableError,
    check_applicable,
)


def make_model() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 2, 3),
        nn.ReLU(),
        nn.Sequential(nn.Conv2d(2, 2, 3), nn.ReLU()),
        nn.Flatten(),
        nn.Linear(8, 2),
    )


@pytest.fixture
def assignment() -> RuleAssignment:
    model = make_model()
    composite = EpsilonPlus()
    ctx: dict = {}
    defaults = {name: composite.module_map(ctx, name, m) for name, m in model.named_modules()}
    return RuleAssignment(dict(model.named_modules()), defaults)


def summary(assignment: RuleAssignment) -> dict[str, tuple[str, str]]:
    return {n: (e.name, e.origin) for n, e in assignment.effective_rules().items()}


def test_defaults_and_fallbacks(assignment):
    assert summary(assignment) == {
        "0": ("ZPlus", "composite"),
        "1": ("Pass", "composite"),
        "2.0": ("ZPlus", "composite"),
        "2.1": ("Pass", "composite"),
        "3": ("Gradient", "gradient"),
        "4": ("Epsilon", "composite"),
    }


@pytest.mark.parametrize("report_fallback", [True, False])
def test_a_module_without_rule_is_a_fallback_only_where_the_composite_reports_it(report_fallback):
    """LayerNorm computes something and EpsilonPlus has no rule for it: a fallback when the
    composite reports fallbacks; max pooling's plain gradient is intended either way."""
    model = nn.Sequential(
        nn.Linear(4, 4), nn.LayerNorm(4), nn.Unflatten(1, (1, 4)), nn.MaxPool1d(2)
    )
    composite = EpsilonPlus()
    ctx: dict = {}
    defaults = {name: composite.module_map(ctx, name, m) for name, m in model.named_modules()}
    assignment = RuleAssignment(dict(model.named_modules()), defaults, report_fallback)
    origins = {n: e.origin for n, e in assignment.effective_rules().items()}
    assert origins == {
        "0": "composite",
        "1": "fallback" if report_fallback else "gradient",
        "2": "gradient",
        "3": "gradient",
    }
    assignment.replace(defaults, [], report_fallback=not report_fallback)
    assert assignment.effective("1").origin == ("gradient" if report_fallback else "fallback")


def test_overrides_by_name_type_and_subtree_last_wins(assignment):
    assert assignment.assign(rules.Gamma(), type="Conv2d") == ["0", "2.0"]
    assert assignment.assign(rules.Flat(), name="0") == ["0"]
    assert assignment.assign(rules.ReLUGuidedBackprop(), within="2", type=nn.ReLU) == ["2.1"]
    effective = summary(assignment)
    assert effective["0"] == ("Flat", "override")
    assert effective["2.0"] == ("Gamma", "override")
    assert effective["2.1"] == ("ReLUGuidedBackprop", "override")
    assert effective["1"] == ("Pass", "composite")
    # re-assigning the type override moves it last, so it now beats the name override
    assignment.assign(rules.AlphaBeta(), type="Conv2d")
    assert summary(assignment)["0"] == ("AlphaBeta", "override")
    assignment.remove(type="Conv2d")
    assert summary(assignment)["0"] == ("Flat", "override")
    assert summary(assignment)["2.0"] == ("ZPlus", "composite")


def test_type_groups_and_whole_subtree(assignment):
    assert assignment.assign(rules.Epsilon(0.1), type="types.Linear") == ["0", "2.0", "4"]
    assert assignment.assign(None, within="2") == ["2.0", "2.1"]
    effective = summary(assignment)
    assert effective["2.0"] == ("Gradient", "override")
    assert effective["0"] == ("Epsilon", "override")
    assert assignment.effective("4").params == {"epsilon": 0.1, "zero_params": None}


def test_set_params_changes_one_parameter_and_keeps_the_rest(assignment):
    new = assignment.set_params("0", stabilizer=0.5, zero_params="bias")
    assert new == rules.ZPlus(stabilizer=0.5, zero_params="bias")
    effective = assignment.effective("0")
    assert effective.origin == "override" and effective.rule is new
    assert assignment.effective("2.0").params == {"stabilizer": 1e-6, "zero_params": None}
    with pytest.raises(ValueError, match="gamma"):
        assignment.set_params("0", gamma=1.0)  # ZPlus has no gamma
    with pytest.raises(ValueError, match="alpha - beta must be 1"):
        assignment.assign(rules.AlphaBeta(), name="0")
        assignment.set_params("0", alpha=3.0)
    with pytest.raises(AssignmentError, match="plain gradient"):
        assignment.set_params("3", epsilon=1.0)


def test_clear_and_copy_are_independent(assignment):
    other = assignment.copy()
    assignment.assign(rules.Flat(), name="4")
    assert other.effective("4").name == "Epsilon"
    version = assignment.version
    assignment.clear()
    assert assignment.version > version
    assert summary(assignment) == summary(other)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ({"name": "9"}, "name='9' matches no module"),
        ({"name": "2"}, "name='2' is a container"),
        ({"type": "Conv3d"}, "matches no leaf module"),
        ({"within": "nope"}, "within='nope' matches no module"),
        ({"name": "0", "type": "Conv2d"}, "either name, or type"),
        ({}, "give the target"),
    ],
)
def test_bad_targets_are_named(assignment, target, message):
    with pytest.raises(AssignmentError, match=message):
        assignment.assign(rules.Flat(), **target)
    assert all(e.origin != "override" for e in assignment.effective_rules().values())


def test_remove_of_missing_override_raises(assignment):
    with pytest.raises(AssignmentError, match="no override"):
        assignment.remove(name="0")


def test_check_applicable():
    relu, linear = nn.ReLU(), nn.Linear(3, 2)
    with pytest.raises(RuleNotApplicableError, match="ZBox cannot apply to module 'act'"):
        check_applicable(rules.ZBox(-1.0, 1.0), "act", relu)
    with pytest.raises(RuleNotApplicableError, match="element-wise"):
        check_applicable(rules.Pass(), "fc", linear, [(1, 3)], [(1, 2)])
    # rules that fit raise nothing
    check_applicable(rules.Pass(), "act", relu, [(1, 3)], [(1, 3)])
    check_applicable(rules.Norm(), "act", relu)
    check_applicable(rules.ZBox(-1.0, 1.0), "fc", linear)
    check_applicable(rules.ReLUGuidedBackprop(), "fc", linear, [(1, 3)], [(1, 2)])
    check_applicable(None, "fc", linear)
