"""Columns of the Compare widget: a configuration turned into a rule assignment on a shared model.

A column is one rule configuration: a composite (with its editable parameters) plus per-layer
overrides, held as its own :class:`lrp_core.assignment.RuleAssignment` over the modules of the
one live explanation that all columns share. A configuration is given as a preset name, a
``Composite`` instance, a JSON string or dict in the ``lrp_core.config`` format, an ``Explorer``
(its current ``config``) or None (plain gradient); :func:`read_config` turns each into a
:class:`ColumnSpec`, :func:`build_column` into a :class:`Column`.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from lrp_core._live_editing import composite_defaults, reports_fallback
from lrp_core.assignment import RuleAssignment
from lrp_core.composites import COMPOSITES, get_composite
from lrp_core.config import (
    CANONIZERS,
    ConfigError,
    canonizer_set_name,
    composite_spec,
    encode_value,
    parse_config,
    read_canonizers,
    read_composite,
    read_overrides,
    to_json,
)
from lrp_core.core import Composite, Hook
from lrp_core.live import LiveExplanation
from lrp_core.rule_registry import GRADIENT, make_rule, rule_name, rule_params
from lrp_widgets._checks import composite_key

#: constructor keywords of composites that are not editable parameters
NOT_PARAMS = frozenset({"self", "layer_map", "first_map", "canonizers", "zero_params"})


class ColumnError(ValueError):
    """A column configuration or change that cannot be used; the message names the column.

    ``field`` is the configuration entry at fault when a ``ConfigError`` caused it (else None).
    """

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def column_error(column: str, error: Exception) -> Exception:
    """``error`` with a message that starts with the column's name: a ``TypeError`` for a value
    of the wrong type, else a ``ColumnError`` (keeping a ``ConfigError``'s ``field``)."""
    message = f"column {column!r}: {error}"
    if isinstance(error, TypeError):
        return TypeError(message)
    return ColumnError(message, getattr(error, "field", None))


@dataclass
class ColumnSpec:
    """A configuration read from the user, not yet bound to a model.

    ``canonizers`` is what the configuration carries: a registered set name (JSON), a list of
    canonizer objects (a ``Composite``'s), or None (nothing said).
    """

    name: str
    composite: Composite | None
    composite_name: str | None = None
    composite_params: dict[str, Any] = field(default_factory=dict)
    overrides: list = field(default_factory=list)
    canonizers: str | list | None = None


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


def class_style(key: str) -> str:
    """Display name of a registered composite: its class name (``"EpsilonPlusFlat"``)."""
    return COMPOSITES[key].__name__


def _box_defaults(key: str, params: dict[str, Any], value_range: tuple[float, float]) -> dict:
    """Composites with required ``low``/``high`` (box rules) get the batch's value range."""
    signature = inspect.signature(COMPOSITES[key].__init__).parameters
    defaults = {"low": value_range[0], "high": value_range[1]}
    for bound, value in defaults.items():
        param = signature.get(bound)
        if param is not None and param.default is inspect.Parameter.empty and bound not in params:
            params = {**params, bound: value}
    return params


def _preset(name: str, value_range: tuple[float, float]) -> ColumnSpec:
    if name.lower() in (GRADIENT.lower(), "none"):
        return ColumnSpec(GRADIENT, None)
    key = composite_key(name)
    params = _box_defaults(key, {}, value_range)
    return ColumnSpec(class_style(key), get_composite(key)(**params), key, params)


def _from_json(config: str | dict, value_range: tuple[float, float], fallback: str) -> ColumnSpec:
    parsed = parse_config(config)
    canonizers = read_canonizers(parsed.get("canonizers"))
    entry = parsed.get("composite")
    if isinstance(entry, dict) and entry.get("name") in COMPOSITES:
        params = entry.get("params", {})
        if isinstance(params, dict):  # box bounds left out: the batch's value range
            entry = {**entry, "params": _box_defaults(entry["name"], params, value_range)}
    spec = read_composite(entry)
    overrides = parsed.get("overrides", [])
    if spec is None:
        return ColumnSpec(fallback or GRADIENT, None, overrides=overrides, canonizers=canonizers)
    key, params = spec
    composite = get_composite(key)(**params)  # read_composite has checked the parameters
    name = fallback or class_style(key)
    return ColumnSpec(name, composite, key, params, overrides, canonizers)


def read_config(config: Any, value_range: tuple[float, float]) -> ColumnSpec:
    """A :class:`ColumnSpec` from any accepted configuration (see the module docstring).

    ``value_range``: (min, max) of the inputs, the default bounds of box rules.

    Raises:
        ConfigError: malformed JSON or config content; ``field`` names the entry.
        ValueError: an unknown preset name (the message lists them).
        TypeError: a value of another type.
    """
    if config is None:
        return ColumnSpec(GRADIENT, None)
    if isinstance(config, str):
        if config.lstrip().startswith(("{", "[")):
            return _from_json(config, value_range, "")
        return _preset(config, value_range)
    if isinstance(config, dict):
        return _from_json(config, value_range, "")
    if isinstance(config, Composite) or callable(getattr(config, "module_map", None)):
        try:
            key, params = composite_spec(
                SimpleNamespace(composite=config, composite_name=None, composite_params={})
            )
        except (ConfigError, TypeError, ValueError):  # custom: usable, parameters not editable
            key, params = None, {}
        name = type(config).__name__
        return ColumnSpec(name, config, key, params, canonizers=list(config.canonizers or []))
    explorer_config = getattr(type(config), "config", None)
    if isinstance(explorer_config, property) and hasattr(config, "live"):  # an Explorer
        return _from_json(config.config, value_range, "Explorer")
    raise TypeError(
        f"a column configuration must be a preset name, a Composite, a JSON string or dict, an "
        f"Explorer or None, got {type(config).__name__}"
    )


def carried_canonizers(spec: ColumnSpec) -> list | None:
    """Fresh canonizers that ``spec`` asks for, or None when it says nothing."""
    if isinstance(spec.canonizers, str):
        return CANONIZERS[spec.canonizers].factory()
    if spec.canonizers:
        return list(spec.canonizers)
    return None


def check_canonizers(spec: ColumnSpec, shared: list) -> None:
    """Raise ``ConfigError`` when ``spec`` names canonizers other than the shared ones."""
    if spec.canonizers is None or spec.canonizers == []:
        return
    if isinstance(spec.canonizers, str):
        try:
            same = spec.canonizers == canonizer_set_name(shared)
        except ConfigError:
            same = False
        wanted = repr(spec.canonizers)
    else:
        same = [type(c) for c in spec.canonizers] == [type(c) for c in shared]
        wanted = str([type(c).__name__ for c in spec.canonizers])
    if not same:
        raise ConfigError(
            "canonizers",
            f"the configuration asks for canonizers {wanted} but the grid shares "
            f"{[type(c).__name__ for c in shared] or 'none'}; canonizers change the model, so all "
            "columns must use the same ones: pass canonizers=... to Compare(...) or remove the "
            "'canonizers' entry from this configuration",
        )


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

    Raises:
        ColumnError: the canonizers differ from the shared ones, an override names no module, or
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

    Raises:
        ColumnError: the column has no editable composite, a parameter is unknown or not a
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
