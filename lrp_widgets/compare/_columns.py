"""Columns of the Compare widget: a configuration bound to the shared model, and its edits.

A column is one rule configuration: a composite (with its editable parameters) plus per-layer
overrides, held as its own :class:`lrp_core.assignment.RuleAssignment` over the modules of the
one live explanation that all columns share. :func:`build_column` binds a
:class:`~lrp_widgets.compare._configs.ColumnSpec` as a :class:`Column`; the other functions
edit a column (validated, unchanged on error) and describe it for the page.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lrp_core.composites import COMPOSITES, get_composite
from lrp_core.core import Composite, Hook
from lrp_core.live import (
    ConfigError,
    LiveExplanation,
    RuleAssignment,
    composite_defaults,
    encode_value,
    make_rule,
    read_overrides,
    reports_fallback,
    rule_name,
    rule_params,
    to_json,
)
from lrp_widgets.compare._configs import (
    ColumnError,
    ColumnSpec,
    check_canonizers,
    class_style,
    column_error,
)

#: constructor keywords of composites that are not editable parameters
NOT_PARAMS = frozenset({"self", "layer_map", "first_map", "canonizers", "zero_params"})


@dataclass
class Column:
    """One column of the grid. Duck-types the parts of a live explanation that
    ``lrp_core.config.to_config`` reads (``assignment``, ``composite*``, ``canonizers``)."""

    id: int
    name: str
    assignment: RuleAssignment
    composite: Composite | None
    composite_name: str | None
    composite_params: dict[str, Any]
    canonizers: list
    generation: int = 0
    request: int = 0
    result: Any = None


def unique_name(base: str, taken: set[str]) -> str:
    """``base``, or ``"base (2)"``, ``"base (3)"``... whichever is not in ``taken``."""
    if base not in taken:
        return base
    number = 2
    while f"{base} ({number})" in taken:
        number += 1
    return f"{base} ({number})"


def build_column(column_id: int, name: str, spec: ColumnSpec, live: LiveExplanation) -> Column:
    """Bind ``spec`` to the shared live explanation: its own assignment, validated.

    Raises
    ------
    ColumnError
        the canonizers differ from the shared ones, an override names no module, or
        a rule cannot apply to its module; the message names the column and the field.
    """
    try:
        check_canonizers(spec, live.canonizers)
        defaults = composite_defaults(spec.composite, live.model)
        assignment = RuleAssignment(
            live.assignment.modules, defaults, reports_fallback(spec.composite)
        )
        overrides = read_overrides(spec.overrides, assignment)
        assignment.replace(defaults, overrides)
        live.validate(assignment)
    except (ValueError, TypeError) as error:
        raise column_error(name, error) from None
    return Column(
        column_id,
        name,
        assignment,
        spec.composite,
        spec.composite_name,
        dict(spec.composite_params),
        live.canonizers,
    )


def editable_params(column: Column) -> dict[str, Any]:
    """The composite's editable parameters (numbers, strings, None) and their current values."""
    if column.composite_name is None:
        return {}
    signature = inspect.signature(COMPOSITES[column.composite_name].__init__).parameters
    params: dict[str, Any] = {}
    for name, param in signature.items():
        if name in NOT_PARAMS or param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
            continue
        value = column.composite_params.get(name, param.default)
        if value is inspect.Parameter.empty:
            value = None
        if isinstance(value, bool) or not (isinstance(value, int | float | str) or value is None):
            continue
        params[name] = value
    return params


def with_composite_params(column: Column, live: LiveExplanation, changes: dict[str, Any]) -> None:
    """Rebuild ``column``'s composite with parameters ``changes`` (overrides kept), validated.

    Raises
    ------
    ColumnError
        the column has no editable composite, a parameter is unknown or not a
        number, or the composite or a rule rejects the value; the column is then unchanged.
    """
    allowed = editable_params(column)
    if column.composite_name is None:
        raise ColumnError(
            f"column {column.name!r} has no registered composite, so it has no composite "
            "parameters; use set_params(layer, column=...) for its per-layer rules"
        )
    for key, value in changes.items():
        if key not in allowed:
            raise ColumnError(
                f"column {column.name!r}: {class_style(column.composite_name)} has no editable "
                f"parameter {key!r}; its parameters are {sorted(allowed)}"
            )
        if isinstance(allowed[key], int | float) and not _is_number(value):
            raise ColumnError(
                f"column {column.name!r}: parameter {key!r} must be a finite number, got {value!r}"
            )
    params = {**column.composite_params, **changes}
    try:
        composite = get_composite(column.composite_name)(**params)
    except (TypeError, ValueError) as error:
        raise ColumnError(f"column {column.name!r}: {error}") from None
    assignment = column.assignment
    saved = (dict(assignment.defaults), list(assignment.overrides))
    try:
        assignment.replace(composite_defaults(composite, live.model), assignment.overrides)
        live.validate(assignment)
    except (ValueError, TypeError) as error:
        assignment.replace(*saved)
        raise ColumnError(f"column {column.name!r}: {error}") from None
    column.composite, column.composite_params = composite, params


def _edit_rules(column: Column, live: LiveExplanation, what: str, edit: Callable[[], Any]) -> None:
    """Run ``edit`` on ``column``'s assignment and validate it; on error restore the assignment
    and raise a ``ColumnError`` naming the column and ``what`` was edited."""
    assignment = column.assignment
    saved = (dict(assignment.defaults), list(assignment.overrides))
    try:
        edit()
        live.validate(assignment)
    except (ValueError, TypeError) as error:
        assignment.replace(*saved)
        raise ColumnError(f"column {column.name!r}{what}: {error}") from None


def assign_rule(
    column: Column,
    live: LiveExplanation,
    rule: Hook | str | None,
    target: dict[str, Any],
    params: dict[str, Any],
) -> None:
    """Override the rule of the leaves ``target`` (``name``, ``type``, ``within`` as in
    :meth:`lrp_core.assignment.RuleAssignment.assign`) in ``column``: ``rule`` is a registered
    rule name (or ``"Gradient"``) with ``params``, a rule instance, or None (plain gradient).

    Raises
    ------
    ColumnError
        Unknown layer, rule or parameter, or a rule that cannot apply; the column is unchanged.
    """
    assignment = column.assignment
    name = target.get("name")

    def edit() -> None:
        if name is not None and name not in assignment.leaves:
            assignment.effective(name)  # raises with a message naming close modules
        if isinstance(rule, str):
            made = make_rule(rule, params)
        elif params:
            raise TypeError(f"parameters {sorted(params)} are only accepted with a rule name")
        else:
            made = rule
        assignment.assign(made, **target)

    _edit_rules(column, live, "" if name is None else f", layer {name!r}", edit)


def set_layer_params(
    column: Column, live: LiveExplanation, name: str, params: dict[str, Any]
) -> None:
    """Change parameters of leaf ``name``'s effective rule in ``column``.

    Raises
    ------
    ColumnError
        Unknown layer or parameter, a rejected value, or the plain gradient (no parameters);
        the column is unchanged.
    """
    assignment = column.assignment

    def edit() -> None:
        if name not in assignment.leaves:
            assignment.effective(name)  # raises with a message naming close modules
        assignment.set_params(name, **params)

    _edit_rules(column, live, f", layer {name!r}", edit)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def column_json(column: Column) -> str:
    """The column's configuration in the ``lrp_core.config`` JSON format."""
    return to_json(column)


def column_entry(column: Column) -> dict[str, Any]:
    """The column as the ``columns`` trait describes it (JSON-serialisable)."""
    overrides = []
    for override in column.assignment.overrides:
        entry: dict[str, Any] = {
            "layer": override.name or "",
            "rule": rule_name(override.rule),
            "params": {k: encode_value(v) for k, v in rule_params(override.rule).items()},
        }
        if override.name is None:
            entry.update(type=override.type, within=override.within)
        overrides.append(entry)
    try:
        config = column_json(column)
    except ConfigError:  # e.g. a custom composite: shown, but not exportable
        config = ""
    return {
        "id": column.id,
        "name": column.name,
        "composite": column.composite_name or "",
        "params": editable_params(column),
        "overrides": overrides,
        "config": config,
    }
