"""Column configurations of the Compare widget, as the user gives them, not yet bound to a model.

A configuration is a preset name, a ``Composite`` instance, a JSON string or dict in the
``lrp_core.config`` format, an ``Explorer`` (its current ``config``) or None (plain gradient);
:func:`read_config` turns each into a :class:`ColumnSpec` (``lrp_widgets.compare._columns``
binds it to the shared model).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

from lrp_core.composites import COMPOSITES, get_composite
from lrp_core.core import Composite
from lrp_core.live import (
    CANONIZERS,
    GRADIENT,
    ConfigError,
    canonizer_set_name,
    composite_spec,
    parse_config,
    read_canonizers,
    read_composite,
)
from lrp_widgets._checks import composite_key


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

    Raises
    ------
    ConfigError
        malformed JSON or config content; ``field`` names the entry.
    ValueError
        an unknown preset name (the message lists them).
    TypeError
        a value of another type.
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
            key, params = composite_spec(config)
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
