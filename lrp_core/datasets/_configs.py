"""Rule configurations of a data-set run: whatever the widgets accept, turned into composites.

A configuration is a composite name (``"EpsilonPlusFlat"``, ``"epsilon_plus_flat"``), a
``Composite`` instance, a JSON string or dict in the ``lrp_core.config`` format, any object with a
``config`` attribute holding such JSON (an Explorer, duck-typed), or None (the plain gradient).
Each becomes a :class:`RuleConfig`: a file-safe name, the composite the attributor registers, and
the configuration as JSON for the store. JSON configurations are bound to the model once, through
a live explanation on one probe sample, and exported with ``to_composite``: the same rules the
widgets compute, as one composite for the plain attributor.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import torch
from torch import nn

from lrp_core.composites import COMPOSITES, get_composite
from lrp_core.core import Composite
from lrp_core.live import ConfigError, live_from_config, to_config

from ._errors import DatasetAttributionError

GRADIENT = "Gradient"


@dataclass
class RuleConfig:
    """One configuration of a run.

    Attributes
    ----------
    name : str
        File-safe name (the store file is ``<name>.attribution.h5``).
    composite : Composite or None
        Registered by the attributor; None for the plain gradient.
    config_json : str
        The configuration in the ``lrp_core.live`` JSON format, or a JSON object
        ``{"composite_class": ...}`` for a composite that cannot be exported (custom maps).
    """

    name: str
    composite: Composite | None
    config_json: str


def _export(composite: Composite | None, name: str | None, params: dict) -> str:
    """JSON of a composite without overrides (``to_config`` reads only these attributes)."""
    if composite is None:
        return json.dumps({"format": "lrp_core.live", "version": 1, "composite": None,
                           "canonizers": None, "overrides": []})  # fmt: skip
    owner = SimpleNamespace(
        composite=composite,
        composite_name=name,
        composite_params=params,
        canonizers=list(getattr(composite, "canonizers", None) or []),
        assignment=SimpleNamespace(overrides=[]),
    )
    try:
        return json.dumps(to_config(owner))
    except ConfigError:  # a custom composite: usable, but only describable by its class
        cls = type(composite)
        return json.dumps({"composite_class": f"{cls.__module__}.{cls.__qualname__}"})


def _from_name(name: str) -> tuple[str, Composite | None, str]:
    if name.lower() in (GRADIENT.lower(), "none"):
        return GRADIENT, None, _export(None, None, {})
    try:
        cls = get_composite(name)
    except ValueError as error:
        raise DatasetAttributionError(f"configs: {error}") from None
    key = name if name in COMPOSITES else next(k for k, c in COMPOSITES.items() if c is cls)
    try:
        composite = cls()
    except TypeError as error:
        raise DatasetAttributionError(
            f"configs: the composite {name!r} needs parameters ({error}); give a Composite "
            f"instance or a JSON config such as {{'format': 'lrp_core.live', 'version': 1, "
            f"'composite': {{'name': {key!r}, 'params': {{...}}}}}}"
        ) from None
    return cls.__name__, composite, _export(composite, key, {})


def _from_json(
    config: str | dict, model: nn.Module, probe: torch.Tensor
) -> tuple[str, Composite, str]:
    """Bind a JSON configuration to ``model`` (validated on ``probe``) and export it."""
    try:
        live = live_from_config(model, probe, config, eval_mode=True)
    except (ConfigError, ValueError, TypeError) as error:
        raise DatasetAttributionError(f"configs: {error}") from None
    try:
        text = live.to_json()
        composite = live.to_composite()
        base = type(live.composite).__name__ if live.composite is not None else GRADIENT
        label = base if not live.assignment.overrides else f"{base}+overrides"
    finally:
        live.close()
    return label, composite, text


def resolve_config(config: Any, model: nn.Module, probe: torch.Tensor) -> tuple[str, Any, str]:
    """(default name, composite or None, JSON) of one configuration (see the module doc)."""
    if config is None:
        return _from_name(GRADIENT)
    if isinstance(config, str) and not config.lstrip().startswith(("{", "[")):
        return _from_name(config)
    if isinstance(config, str | dict):
        return _from_json(config, model, probe)
    if isinstance(config, Composite) or callable(getattr(config, "module_map", None)):
        return type(config).__name__, config, _export(config, None, {})
    explorer_config = getattr(config, "config", None)
    if isinstance(explorer_config, str | dict):  # an Explorer, or anything exposing its config
        name, composite, text = _from_json(explorer_config, model, probe)
        return type(config).__name__, composite, text
    raise DatasetAttributionError(
        f"configs: a configuration must be a composite name, a Composite, a JSON string or dict "
        f"(lrp_core.config format), an object with a .config JSON (an Explorer) or None, got "
        f"{type(config).__name__}"
    )


def _safe(name: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.+-]+", "_", name).strip("._")
    if not safe:
        raise DatasetAttributionError(f"configs: the name {name!r} has no file-safe characters")
    return safe


def resolve_configs(configs: Any, model: nn.Module, probe: torch.Tensor) -> list[RuleConfig]:
    """All configurations of a run, with unique file-safe names.

    ``configs`` is one configuration, a sequence of them (names derived from the composites) or
    a mapping name -> configuration (a dict with a ``"format"`` key is one JSON configuration).
    """
    if isinstance(configs, Mapping) and "format" not in configs:
        named = [(str(key), value) for key, value in configs.items()]
    elif isinstance(configs, str | dict) or not isinstance(configs, Iterable):
        named = [(None, configs)]
    else:
        named = [(None, value) for value in configs]
    if not named:
        raise DatasetAttributionError("configs: give at least one rule configuration")
    resolved, taken = [], set()
    for key, value in named:
        default, composite, text = resolve_config(value, model, probe)
        name = _safe(key if key is not None else default)
        if key is None:
            base, number = name, 2
            while name in taken:
                name, number = f"{base}-{number}", number + 1
        elif name in taken:
            raise DatasetAttributionError(
                f"configs: two configurations are both named {name!r} once made file-safe; "
                "rename one"
            )
        taken.add(name)
        resolved.append(RuleConfig(name, composite, text))
    return resolved
