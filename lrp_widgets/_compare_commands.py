"""Commands the Compare page sends as custom messages, applied to the widget.

Each message is ``{"type": ..., "request": n, ...}`` (columns are named by their stable ``id``):

- ``add_column``: ``preset`` (a preset name or ``"Gradient"``) or ``config`` (JSON text), and
  optionally ``name`` and ``index``;
- ``remove_column``: ``id``;  ``move_column``: ``id``, ``index``;
- ``set_params``: ``id``, ``params`` (the column's composite parameters);
- ``set_layer_params``: ``id``, ``layer``, ``params``, optional ``rule`` (a registered name);
- ``compute_scores``: ``names`` (long scores; default all). It starts a background thread and is
  answered at once; ``progress`` follows the work and returns to ``{}`` when it ends;
- ``cancel`` (no request number needed): stops ``compute_scores`` after its current step.

Failures never raise into the comm machinery: they set the widget's ``status``/``error`` and
keep the last good grid; ``answered`` tells the page it may send its next request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lrp_widgets.compare import Compare


def _params(content: dict) -> dict[str, Any]:
    params = content.get("params") or {}
    if not isinstance(params, dict):
        raise TypeError(f"'params' must be an object of parameter values, got {params!r}")
    return dict(params)


def _apply(compare: Compare, kind: Any, content: dict) -> None:
    if kind == "add_column":
        config = content.get("config") if "config" in content else content.get("preset")
        if config is None and "preset" not in content:
            raise ValueError("add_column needs 'preset' (a preset name) or 'config' (JSON text)")
        compare.add_column(config, content.get("name") or None, content.get("index"))
    elif kind == "remove_column":
        compare.remove_column(compare._column_by_id(content.get("id")).name)
    elif kind == "move_column":
        column = compare._column_by_id(content.get("id"))
        compare.move_column(column.name, content.get("index"))
    elif kind == "set_params":
        column = compare._column_by_id(content.get("id"))
        compare.set_params(column.name, **_params(content))
    elif kind == "set_layer_params":
        column = compare._column_by_id(content.get("id"))
        layer = content.get("layer")
        if not isinstance(layer, str):
            raise TypeError(f"set_layer_params needs 'layer', a module name, got {layer!r}")
        rule = content.get("rule") or None
        compare.set_layer_params(column.name, layer, rule, **_params(content))
    elif kind == "compute_scores":
        compare._runner.start(compare._score_names(content.get("names")))
    else:
        raise ValueError(f"unknown command type {kind!r}")


def handle_command(compare: Compare, content: Any) -> None:
    """Apply one command message from the page to ``compare`` (see the module docstring)."""
    if not isinstance(content, dict):
        return
    kind = content.get("type")
    if kind == "cancel":
        compare.cancel()
        return
    try:
        request = int(content.get("request", 0))
    except (TypeError, ValueError):
        request = 0
    compare._request = request
    try:
        _apply(compare, kind, content)
    except Exception as error:  # bad message or rejected change: show it, keep working
        compare._failed(error)
    finally:
        compare._request = 0
        compare.answered = max(compare.answered, request)
