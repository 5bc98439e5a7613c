"""What the Explorer and Compare share through ``lrp_widgets._base``: one verb, one signature, and
one page-command mechanism that answers every message.

Page commands are delivered with ``widget._on_message(widget, content, [])``, the handler
ipywidgets calls.
"""

from __future__ import annotations

import inspect
import re

import pytest
import torch
from _compare_helpers import batch, small_model

from lrp_core.live import LiveExplanation
from lrp_widgets import Compare, Explorer
from lrp_widgets._base import LrpWidget, request_number

EXTRA = inspect.Parameter("column", inspect.Parameter.KEYWORD_ONLY)


def parameters(function) -> list[tuple[str, inspect._ParameterKind, object]]:
    """(name, kind, default) of each parameter; annotations may differ (Explorer also takes a
    list of names), the calling convention may not."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


def with_column(function) -> list[tuple[str, inspect._ParameterKind, object]]:
    """LiveExplanation's parameters with the keyword-only ``column`` (no default) before
    ``**params``: the one argument a grid of columns needs on top."""
    params = parameters(function)
    extra = (EXTRA.name, EXTRA.kind, EXTRA.default)
    return [*params[:-1], extra, params[-1]]


@pytest.mark.parametrize("verb", ["assign", "set_params"])
def test_explorer_verbs_take_the_live_explanation_arguments(verb):
    assert parameters(getattr(Explorer, verb)) == parameters(getattr(LiveExplanation, verb))


@pytest.mark.parametrize("verb", ["assign", "set_params"])
def test_compare_verbs_add_only_the_column(verb):
    assert parameters(getattr(Compare, verb)) == with_column(getattr(LiveExplanation, verb))


def test_both_widgets_share_the_base():
    assert issubclass(Explorer, LrpWidget) and issubclass(Compare, LrpWidget)
    for name in ("status", "error", "answered"):
        assert Explorer.class_traits()[name] is Compare.class_traits()[name]


@pytest.fixture(params=["explorer", "compare"])
def widget(request):
    model, (inputs, _) = small_model(), batch()
    if request.param == "explorer":
        widget = Explorer(model, inputs)
    else:
        widget = Compare(model, inputs, ["EpsilonPlusFlat"])
    yield widget
    widget.close()


def send(widget: LrpWidget, content) -> None:
    widget._on_message(widget, content, [])


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ({"type": "explode", "request": 3}, r"unknown command type 'explode'; this widget accepts"),
        ({"request": 3}, "unknown command type None"),
        ({"type": ["assign"], "request": 3}, "unknown command type"),
    ],
)
def test_unknown_commands_are_answered_with_an_error(widget, content, match):
    before = dict(widget.get_state())
    send(widget, content)
    assert widget.answered == 3 and widget.status == "error"
    assert re.search(match, widget.error), widget.error
    changed = {k for k, v in widget.get_state().items() if before.get(k) != v}
    assert changed == {"answered", "status", "error"}


@pytest.mark.parametrize("content", [None, "assign", ["assign"], 7])
def test_a_message_that_is_not_an_object_is_reported(widget, content):
    send(widget, content)
    assert widget.status == "error" and "must be an object" in widget.error
    assert widget.answered == 0


@pytest.mark.parametrize("request_value", ["7", 1.5, -2, True, [1]])
def test_a_bad_request_number_is_reported(widget, request_value):
    send(widget, {"type": "explode", "request": request_value})
    assert widget.status == "error" and "'request' must be a non-negative integer" in widget.error
    assert widget.answered == 0


def test_request_numbers():
    assert request_number(None) == 0 and request_number(4) == 4 and request_number(4.0) == 4
    with pytest.raises(ValueError, match="non-negative integer"):
        request_number("4")


def test_params_must_be_an_object(widget):
    if isinstance(widget, Explorer):
        content = {"type": "assign", "names": ["0"], "rule": "Epsilon", "params": [1]}
    else:
        content = {"type": "set_params", "id": 0, "params": [1]}
    send(widget, {**content, "request": 5})
    assert widget.answered == 5 and widget.status == "error"
    assert "'params' must be an object of parameter values" in widget.error


def test_answered_never_goes_back(widget):
    send(widget, {"type": "explode", "request": 9})
    send(widget, {"type": "explode", "request": 4})
    assert widget.answered == 9


def test_each_widget_lists_its_commands():
    assert set(Explorer._handlers) == {"assign", "reset", "composite"}
    assert set(Compare._handlers) == {
        "add_column", "remove_column", "move_column", "set_params", "set_layer_params",
        "compute_scores", "cancel",
    }  # fmt: skip


def test_close_restores_the_model(widget):
    model = widget.model
    widget.close()
    assert not any(m._forward_hooks or m._backward_hooks for m in model.modules())
    assert isinstance(model(batch()[0]), torch.Tensor)
