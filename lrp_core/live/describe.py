"""A JSON-serialisable description of a model's module tree, as a live explanation sees it.

Each node: ``name`` (qualified name, ``""`` for the root), ``type`` (class name), ``params``
(parameter elements of the module and its descendants), ``leaf``, ``input_shapes`` and
``output_shapes`` of its first call in the recorded forward (``None`` if it did not run), and for
leaves ``rule``: ``{"name", "params", "origin"}`` of its effective rule; ``children`` in order.
Members of a run of repeated blocks (see ``lrp_core.live.groups``) have ``group``: the group's
name.

With captured operations (op composites), each module node also has ``ops``: the calls captured
directly inside it, ``{"name", "op", "rule", "params", "origin"}`` in call order.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .assignment import RuleAssignment
from .groups import mark_groups


def json_value(value: Any) -> Any:
    """``value`` made JSON-friendly: tensors become nested lists, stabilizers dicts, non-finite
    floats strings; unknown objects their ``repr``."""
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, torch.Tensor):
        return json_value(value.tolist())
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if hasattr(value, "epsilon") and hasattr(value, "norm_scale"):
        return {k: json_value(v) for k, v in vars(value).items()}
    return repr(value)


def _count(module: nn.Module) -> int:
    return sum(
        0 if isinstance(p, nn.parameter.UninitializedParameter) else p.numel()
        for p in module.parameters()
    )


def describe_model(
    model: nn.Module,
    assignment: RuleAssignment | None = None,
    shapes: dict[str, tuple[list, list]] | None = None,
    ops: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The tree of ``model``'s modules (see the module docstring) as nested dicts."""
    shapes = shapes or {}
    ops_by_module: dict[str, list] = {}
    for row in ops or ():
        entry = {k: json_value(row[k]) for k in ("name", "op", "rule", "params", "origin")}
        ops_by_module.setdefault(row["module"], []).append(entry)
    nodes: dict[str, dict[str, Any]] = {}
    for name, module in model.named_modules():
        leaf = next(module.children(), None) is None
        ins, outs = shapes.get(name, (None, None))
        node: dict[str, Any] = {
            "name": name,
            "type": type(module).__name__,
            "params": _count(module),
            "leaf": leaf,
            "input_shapes": None if ins is None else [list(s) for s in ins],
            "output_shapes": None if outs is None else [list(s) for s in outs],
            "children": [],
        }
        if leaf and assignment is not None and name in assignment.leaves:
            effective = assignment.effective(name)
            node["rule"] = {
                "name": effective.name,
                "params": json_value(effective.params),
                "origin": effective.origin,
            }
        if ops is not None:
            node["ops"] = ops_by_module.get(name, [])
        nodes[name] = node
        if name:
            parent = name.rpartition(".")[0]
            while parent not in nodes:  # a parent registered under another name
                parent = parent.rpartition(".")[0]
            nodes[parent]["children"].append(node)
    mark_groups(nodes[""])
    return nodes[""]
