"""Hardening of the widgets (issue 15): a constructor that fails half-way leaves the model as it
was, a failed edit leaves the rules and the heatmap as they were, and every page message gets
an answer.

The model has batch norms that the canonizer merges (new bias parameters), so a constructor
that forgot to undo something would show in ``ModelState`` (state dict, parameter objects,
hooks, training flags).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from lrp_core.canonizers import MergeBatchNorm, SequentialMergeBatchNorm
from lrp_core.core import Hook
from lrp_core.live import LiveExplanation, RuleFailedError, RuleParameterError
from lrp_widgets import Compare, Explorer
from lrp_widgets._base import LrpWidget
from lrp_widgets.compare import ColumnError
from tests.lrp_core.faults import Fault, FaultyEpsilon, Plan, steps
from tests.lrp_core.model_state import ModelState, randomize_batch_norms

WIDGETS = {"explorer": Explorer, "compare": Compare}


def bn_model() -> nn.Module:
    """Conv-BN-ReLU twice, pool, flatten, linear: 4 classes on 3x8x8 images."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AvgPool2d(4),
        nn.Flatten(),
        nn.Linear(16, 4),
    )
    return randomize_batch_norms(model)


class MapOutput(nn.Module):
    """A model whose output is a map ``[N, C, H, W]``, not ``[N, classes]``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


def images(n: int = 2) -> torch.Tensor:
    return torch.rand(n, 3, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1


def build(kind: str, model: nn.Module, x: torch.Tensor, **kwargs) -> LrpWidget:
    canonizers = [SequentialMergeBatchNorm()]
    if kind == "explorer":
        return Explorer(model, x, canonizers=canonizers, **kwargs)
    return Compare(model, x, ["EpsilonPlusFlat", "Gradient"], canonizers=canonizers, **kwargs)


BAD_ARGUMENTS = [
    ({"target": 99}, ValueError, "target"),
    ({"target": "3"}, TypeError, "target"),
    ({"target": 1.5}, TypeError, "target"),
    ({"class_names": 5}, TypeError, "class_names"),
    ({"class_names": [1, 2, 3, 4]}, TypeError, "class_names"),
]


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize(("kwargs", "error", "word"), BAD_ARGUMENTS)
@pytest.mark.parametrize("kind", WIDGETS)
def test_a_constructor_refusing_an_argument_leaves_the_model_as_it_was(
    kind, kwargs, error, word, training
):
    """Before: ``target=99`` raised after the live explanation was set up, leaving the dispatch
    hooks and merged batch norms on the model (and it in eval mode); the next widget on the same
    model then failed with HookConflictError."""
    model, x = bn_model().train(training), images()
    before = ModelState(model)
    with pytest.raises(error, match=word):
        build(kind, model, x, **kwargs)
    before.assert_same(model)
    build(kind, model, x).close()  # the model is free again
    before.assert_same(model)


@pytest.mark.parametrize("kind", WIDGETS)
def test_a_model_without_class_scores_leaves_the_model_as_it_was(kind):
    model, x = MapOutput().eval(), images()
    before = ModelState(model)
    try:
        widget = WIDGETS[kind](model, x, canonizers=[])
    except (ValueError, TypeError) as error:
        assert "classes" in str(error) or "target" in str(error)
    else:
        widget.close()
    before.assert_same(model)


@pytest.mark.parametrize("exception", [Fault, KeyboardInterrupt])
@pytest.mark.parametrize("kind", WIDGETS)
def test_a_failure_at_any_step_of_a_widget_constructor_leaves_nothing_behind(kind, exception):
    """Steps: canonizer merges, hook registrations, module forwards, the widget itself, the
    model description and the first explanations."""
    model, x = bn_model().train(), images()
    before = ModelState(model)
    methods = [
        (MergeBatchNorm, "register"),
        (Hook, "register"),
        (LrpWidget, "__init__"),
        (LiveExplanation, "describe"),
        (LiveExplanation, "explain"),
    ]
    with steps(Plan(), methods) as counted:
        build(kind, model, x).close()
    for n in range(1, counted.calls + 1):
        with steps(Plan(n, exception), methods):
            with pytest.raises((exception, ValueError, RuntimeError), match=f"step {n} "):
                build(kind, model, x)
        before.assert_same(model)
    build(kind, model, x).close()
    before.assert_same(model)


# --- failed edits ---
@pytest.fixture
def explorer():
    widget = build("explorer", bn_model(), images())
    yield widget
    widget.close()


def explorer_view(widget: Explorer) -> tuple:
    return widget.heatmap, widget.config, json.dumps(widget.rules, sort_keys=True)


def always_failing() -> FaultyEpsilon:
    FaultyEpsilon.plan = Plan(1)  # fails at its first relevance call: every explanation
    return FaultyEpsilon()


@pytest.mark.parametrize(
    ("edit", "error"),
    [
        (lambda w: w.assign("Gamma", name="0", gamma=1e300), RuleParameterError),
        (lambda w: w.set_params("8", epsilon=1e-300), RuleParameterError),
        (lambda w: w.assign("ZBox", name="0", low=torch.zeros(5), high=1.0), RuleParameterError),
        (lambda w: w.assign(always_failing(), name="3"), RuleFailedError),
    ],
)
def test_a_failed_edit_leaves_the_rules_and_heatmap_exactly_as_they_were(explorer, edit, error):
    """Before: a rule that failed at the explanation stayed assigned, so every later edit of any
    layer failed too."""
    view = explorer_view(explorer)
    with pytest.raises(error):
        edit(explorer)
    assert explorer.status == "error" and explorer.error
    after = explorer_view(explorer)
    assert after[0] is view[0] and after[1:] == view[1:]
    FaultyEpsilon.plan = Plan()
    explorer.assign("Epsilon", name="8", epsilon=0.5)  # the widget is not jammed
    assert explorer.status == "ready" and explorer.heatmap is not view[0]


def test_a_failed_page_edit_is_answered_and_changes_nothing(explorer):
    view = explorer_view(explorer)
    message = {"type": "assign", "request": 5, "names": ["0"], "rule": "Gamma"}
    explorer._on_message(explorer, {**message, "params": {"gamma": 1e300}}, [])
    assert explorer.answered == 5 and explorer.status == "error"
    assert "gamma" in explorer.error and "'0'" in explorer.error
    after = explorer_view(explorer)
    assert after[0] is view[0] and after[1:] == view[1:]


def test_a_failed_column_edit_leaves_the_column_as_it_was():
    grid = build("compare", bn_model(), images())
    try:
        before = grid.column_config("EpsilonPlusFlat"), grid.heatmaps
        with pytest.raises(ColumnError, match="gamma"):
            grid.assign("Gamma", name="0", column="EpsilonPlusFlat", gamma=1e300)
        assert grid.column_config("EpsilonPlusFlat") == before[0] and grid.heatmaps is before[1]
    finally:
        grid.close()


# --- page messages ---
BAD_REQUESTS = ["7", [1], {"n": 1}, 1e30, 2**70, -1, 1.5, math.nan, math.inf, True]


@pytest.mark.parametrize("request_value", BAD_REQUESTS, ids=repr)
@pytest.mark.parametrize("kind", WIDGETS)
def test_every_bad_request_number_is_answered_in_the_status_line(kind, request_value):
    """Before: numbers beyond 2**53 (1e30, 2**70) were taken as request numbers, which the page
    can never exceed, so it waited for ``answered`` forever."""
    widget = build(kind, bn_model(), images())
    try:
        widget._on_message(widget, {"type": "cancel", "request": request_value}, [])
        assert widget.status == "error" and "'request' must be a non-negative integer" in (
            widget.error
        )
        assert widget.answered == 0
        widget._on_message(widget, {"type": "nonsense", "request": 4}, [])
        assert widget.answered == 4 and "unknown command type 'nonsense'" in widget.error
    finally:
        widget.close()


# --- composites with box bounds, targets, lifecycle ---
def test_epsilon_gamma_box_works_in_the_explorer_with_the_inputs_range():
    """Before: offered in the composite picker, but it always failed for lack of low/high."""
    model, x = bn_model(), images()
    widget = Explorer(model, x, "EpsilonGammaBox", canonizers=[SequentialMergeBatchNorm()])
    try:
        params = widget.live.composite_params
        assert (params["low"], params["high"]) == (float(x.min()), float(x.max()))
        widget.set_composite("EpsilonPlusFlat")
        widget._on_message(
            widget, {"type": "composite", "name": "EpsilonGammaBox", "request": 2}, []
        )
        assert widget.answered == 2 and widget.status == "ready", widget.error
        assert widget.composite == "epsilon_gamma_box"
    finally:
        widget.close()


@pytest.mark.parametrize("kind", WIDGETS)
def test_numpy_integer_targets_work_in_both_widgets(kind):
    widget = build(kind, bn_model(), images(), target=np.int64(2))
    try:
        assert widget.target == 2 if kind == "explorer" else widget.classes == [2, 2]
    finally:
        widget.close()


def test_compare_after_close_says_it_was_closed():
    """Before: ``compute_scores`` after ``close()`` raised an AttributeError."""
    grid = build("compare", bn_model(), images())
    grid.close()
    with pytest.raises(RuntimeError, match="was closed"):
        grid.compute_scores()
