"""A rule assignment as data: JSON export and import.

JSON layout (``FORMAT``, version 1)::

    {"format": "lrp_core.live", "version": 1,
     "composite": {"name": "epsilon_plus_flat", "params": {"epsilon": 1e-06}} | null,
     "canonizers": "demo" | null,
     "overrides": [{"name": "features.0", "rule": "Flat", "params": {"stabilizer": 0.01}},
                   {"type": "Conv2d", "within": "block", "rule": "Gamma", "params": {...}}]}

Composites are named as registered in ``lrp_core.composites``, rules as in the rule registry
(custom rules after ``register_rule``), canonizer sets as registered with
``register_canonizers`` (see ``values``, which also writes tensors ``{"tensor": [...]}`` and
stabilizers ``{"stabilizer": {...}}``). Reading validates everything and raises ``ConfigError``
naming the field (``overrides[1].params.gamma``). Nothing is pickled or evaluated.

Everything here works on plain values: writing takes an assignment, a composite spec
(``composite_spec``) and a canonizer set name (``config_dict``; ``to_config`` reads the five
public attributes of a ``Configured`` object such as a live explanation), and reading returns a
``ConfigChange`` that the caller applies (``LiveExplanation.apply_config``,
``LiveExplanation.from_config``). This module knows nothing of ``LiveExplanation``.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from torch import nn

from ..composites import COMPOSITES, OP_COMPOSITES, get_composite
from ..core import Composite, Hook
from .assignment import AssignmentError, Override, RuleAssignment, composite_defaults
from .rule_registry import (
    RULES,
    RuleParameterError,
    UnknownRuleError,
    make_rule,
    rule_name,
    rule_params,
)
from .values import (
    CANONIZERS,
    CanonizerSet,
    ConfigError,
    canonizer_set_name,
    decode_value,
    encode_value,
    register_canonizers,
)

FORMAT = "lrp_core.live"
VERSION = 1
#: deepest nesting of lists and objects a configuration may have (a real one needs about 6)
MAX_DEPTH = 32
_NOT_PARAMS = {"self", "layer_map", "first_map", "canonizers", "op_map", "module_rules"}


# --- export ---
def composite_spec(
    composite: Composite | None, name: str | None = None, params: dict[str, Any] | None = None
) -> tuple[str, dict[str, Any]] | None:
    """(registered name, constructor keywords) of ``composite``, or None for no composite.

    Parameters
    ----------
    composite : Composite or None
        The composite instance.
    name : str, optional
        The registered name it was created from, if known; ``params`` are then its keywords.
    params : dict, optional
        The constructor keywords it was created with (only read together with ``name``).

    Raises
    ------
    ConfigError
        For an unregistered composite or one with custom map entries.
    """
    if composite is None:
        return None
    if name is not None:
        return name, dict(params or {})
    registered = {**COMPOSITES, **OP_COMPOSITES}
    names = [n for n, cls in registered.items() if type(composite) is cls]
    if not names:
        raise ConfigError("composite", f"{type(composite).__name__} is not a registered composite")
    signature = inspect.signature(type(composite).__init__)
    params = {
        p: getattr(composite, p)
        for p in signature.parameters
        if p not in _NOT_PARAMS and hasattr(composite, p)
    }
    if not isinstance(params.get("gamma"), int | float | None):
        raise ConfigError("composite.gamma", "gamma per group of calls cannot be exported")
    fresh = type(composite)(**params)
    for attribute in ("op_map", "module_rules"):
        if len(getattr(fresh, attribute, ())) != len(getattr(composite, attribute, ())):
            raise ConfigError(
                f"composite.{attribute}",
                "custom entries cannot be exported; assign op rules with assign_op instead",
            )
    for attribute in ("layer_map", "first_map"):
        if _map_key(getattr(fresh, attribute, None)) != _map_key(
            getattr(composite, attribute, None)
        ):
            raise ConfigError(
                f"composite.{attribute}",
                "custom map entries cannot be exported; give them as overrides instead",
            )
    return names[0], dict(params)


def _map_key(layer_map: Any) -> Any:
    if layer_map is None:
        return None
    return [(key, type(rule), repr(rule)) for key, rule in layer_map]


def _rule_entry(rule: Hook | None) -> dict[str, Any]:
    return {
        "rule": rule_name(rule),
        "params": {k: encode_value(v) for k, v in rule_params(rule).items()},
    }


def _encoded_composite(spec: tuple[str, dict[str, Any]] | None) -> dict[str, Any] | None:
    if spec is None:
        return None
    return {"name": spec[0], "params": {k: encode_value(v) for k, v in spec[1].items()}}


class Configured(Protocol):
    """What a configuration describes, as held by a ``LiveExplanation`` (or a Compare column).

    ``to_config`` and ``to_json`` read these five public attributes and nothing else.
    """

    assignment: RuleAssignment
    composite: Composite | None
    composite_name: str | None
    composite_params: dict[str, Any]
    canonizers: Sequence


def config_dict(
    assignment: RuleAssignment,
    spec: tuple[str, dict[str, Any]] | None,
    canonizers: str | None,
) -> dict[str, Any]:
    """The configuration of an assignment as a JSON-serialisable dict (see the module docstring).

    Parameters
    ----------
    assignment : RuleAssignment
        The rule assignment; its overrides are written.
    spec : tuple of (str, dict) or None
        The composite as ``composite_spec`` gives it.
    canonizers : str or None
        The registered canonizer set, as ``canonizer_set_name`` gives it.
    """
    overrides = []
    for override in assignment.overrides:
        target = {
            k: v
            for k, v in zip(("name", "type", "within"), override.key, strict=True)
            if v is not None
        }
        overrides.append({**target, **_rule_entry(override.rule)})
    return {
        "format": FORMAT,
        "version": VERSION,
        "composite": _encoded_composite(spec),
        "canonizers": canonizers,
        "overrides": overrides,
    }


def to_config(configured: Configured) -> dict[str, Any]:
    """The configuration of ``configured`` (a live explanation) as a JSON-serialisable dict."""
    spec = composite_spec(
        configured.composite, configured.composite_name, configured.composite_params
    )
    config = config_dict(configured.assignment, spec, canonizer_set_name(configured.canonizers))
    ops = getattr(configured, "ops", None)
    if ops is not None:
        config["op_overrides"] = ops.overrides_config()
    return config


def to_json(configured: Configured, indent: int | None = 2) -> str:
    """``to_config`` as a JSON string."""
    return json.dumps(to_config(configured), indent=indent)


# --- import ---
def _check_depth(config: Any) -> None:
    """Raise ``ConfigError`` for lists and objects nested deeper than ``MAX_DEPTH`` (checked
    without recursion, so any depth gives this error rather than a ``RecursionError``)."""
    stack = [(config, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ConfigError("<root>", f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list | tuple):
            stack.extend((item, depth + 1) for item in value)


def parse_config(config: str | dict) -> dict:
    """``config`` (JSON text or a dict) checked for its format, version and known top-level
    fields; the fields themselves are read by ``read_composite``, ``read_overrides`` and
    ``read_canonizers``."""
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except json.JSONDecodeError as error:
            raise ConfigError("<json>", f"not valid JSON: {error}") from None
        except RecursionError:
            raise ConfigError("<json>", f"nested deeper than {MAX_DEPTH} levels") from None
    _check_depth(config)
    if not isinstance(config, dict):
        raise ConfigError("<root>", f"expected an object, got {type(config).__name__}")
    if config.get("format") != FORMAT:
        raise ConfigError("format", f"expected {FORMAT!r}, got {config.get('format')!r}")
    if config.get("version") != VERSION:
        raise ConfigError("version", f"expected {VERSION}, got {config.get('version')!r}")
    known = {"format", "version", "composite", "canonizers", "overrides", "op_overrides"}
    unknown = set(config) - known
    if unknown:
        raise ConfigError(sorted(unknown)[0], "unknown field")
    return config


def _params(entry: dict, field: str) -> dict[str, Any]:
    params = entry.get("params", {})
    if not isinstance(params, dict):
        raise ConfigError(f"{field}.params", "expected an object of parameters")
    return {k: decode_value(v, f"{field}.params.{k}") for k, v in params.items()}


def _rule(entry: dict, field: str) -> Hook | None:
    name = entry.get("rule")
    if not isinstance(name, str):
        raise ConfigError(f"{field}.rule", f"expected a rule name, got {name!r}")
    params = _params(entry, field)
    try:
        return make_rule(name, params)
    except UnknownRuleError as error:
        raise ConfigError(f"{field}.rule", str(error)) from None
    except RuleParameterError as error:
        where = f"{field}.params" + (f".{error.param}" if error.param else "")
        raise ConfigError(where, str(error)) from None


def read_canonizers(name: Any) -> str | None:
    """Validate the ``canonizers`` field: None or the name of a registered canonizer set."""
    if name is not None and name not in CANONIZERS:
        raise ConfigError(
            "canonizers", f"unknown canonizer set {name!r}; known: {list(CANONIZERS)}"
        )
    return name


def read_composite(spec: Any) -> tuple[str, dict[str, Any]] | None:
    """Validate the ``composite`` field; return (name, params) or None."""
    if spec is None:
        return None
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise ConfigError("composite", "expected {'name': ..., 'params': {...}} or null")
    try:
        cls = get_composite(spec["name"])
    except ValueError as error:
        raise ConfigError("composite.name", str(error)) from None
    params = _params(spec, "composite")
    allowed = [p for p in inspect.signature(cls.__init__).parameters if p not in _NOT_PARAMS]
    for key in params:
        if key not in allowed:
            raise ConfigError(f"composite.params.{key}", f"{spec['name']} takes {allowed}")
    try:
        cls(**params)
    except TypeError as error:
        raise ConfigError("composite.params", f"{spec['name']}: {error}") from None
    except ValueError as error:
        bad = next((k for k in params if k in str(error)), None)
        raise ConfigError("composite.params" + (f".{bad}" if bad else ""), str(error)) from None
    return spec["name"], params


def read_overrides(entries: Any, assignment: RuleAssignment) -> list[Override]:
    """Validate the ``overrides`` field against the modules of ``assignment``."""
    if not isinstance(entries, list):
        raise ConfigError("overrides", "expected a list")
    overrides = []
    probe = assignment.copy()
    for i, entry in enumerate(entries):
        field = f"overrides[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(field, "expected an object")
        unknown = set(entry) - {"name", "type", "within", "rule", "params"}
        if unknown:
            raise ConfigError(f"{field}.{sorted(unknown)[0]}", "unknown field")
        rule = _rule(entry, field)
        target = {k: entry.get(k) for k in ("name", "type", "within")}
        try:
            probe.assign(rule, **target)
        except (AssignmentError, TypeError) as error:
            key = next((k for k in target if target[k] is not None and k in str(error)), "name")
            raise ConfigError(f"{field}.{key}", str(error)) from None
        overrides.append(probe.overrides[-1])
    return overrides


@dataclass(frozen=True)
class ConfigChange:
    """A validated configuration, ready to replace an assignment's composite and overrides."""

    composite: Composite | None
    spec: tuple[str, dict[str, Any]] | None
    defaults: dict[str, Hook | None]
    overrides: list[Override]


def read_config(
    config: str | dict, assignment: RuleAssignment, model: nn.Module, canonizers: Sequence
) -> ConfigChange:
    """Validate ``config`` completely against an assignment of ``model``'s modules.

    Parameters
    ----------
    config : str or dict
        The configuration, JSON text or a dict.
    assignment : RuleAssignment
        The assignment the overrides are checked against (it is not changed).
    model : torch.nn.Module
        The model whose modules get the composite's default rules.
    canonizers : sequence
        The canonizers in use: the configuration must name the same set (canonizers change the
        model, so a different set needs a new live explanation: ``LiveExplanation.from_config``).

    Returns
    -------
    ConfigChange
        The composite, its spec, the default rules and the overrides.

    Raises
    ------
    ConfigError
        Naming the offending field.
    """
    config = parse_config(config)
    if config.get("canonizers") != canonizer_set_name(canonizers):
        raise ConfigError(
            "canonizers",
            f"{config.get('canonizers')!r} differs from this live explanation's canonizers; "
            "create a new one with lrp_core.live.LiveExplanation.from_config",
        )
    spec = read_composite(config.get("composite"))
    composite = None if spec is None else get_composite(spec[0])(**spec[1])
    overrides = read_overrides(config.get("overrides", []), assignment)
    return ConfigChange(composite, spec, composite_defaults(composite, model), overrides)


__all__ = [
    "CANONIZERS",
    "RULES",
    "CanonizerSet",
    "ConfigChange",
    "ConfigError",
    "Configured",
    "canonizer_set_name",
    "composite_spec",
    "config_dict",
    "decode_value",
    "encode_value",
    "parse_config",
    "read_canonizers",
    "read_composite",
    "read_config",
    "read_overrides",
    "register_canonizers",
    "to_config",
    "to_json",
]
