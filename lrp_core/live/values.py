"""The pieces a configuration is written with: its error, tagged parameter values, canonizer sets.

Rule parameters are JSON numbers, strings and lists, or tagged objects: tensors
``{"tensor": [...]}`` and stabilizers ``{"stabilizer": {...}}``. Canonizers change the model, so a
configuration names them by a registered set (``register_canonizers``) whose factory makes fresh
ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ..canonizers import SequentialMergeBatchNorm
from ..core import Stabilizer


class ConfigError(ValueError):
    """An invalid configuration; ``field`` is the path of the offending entry."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class CanonizerSet:
    """A named factory of fresh canonizers and the code line that creates them in a snippet."""

    factory: Callable[[], list]
    imports: str
    expression: str


CANONIZERS: dict[str, CanonizerSet] = {}


def register_canonizers(name: str, factory: Callable[[], list]) -> None:
    """Register ``factory`` (a module-level function returning fresh canonizers) as ``name``."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"register_canonizers: name must be a non-empty string, got {name!r}")
    imports = f"from {factory.__module__} import {factory.__qualname__}"
    CANONIZERS[name] = CanonizerSet(factory, imports, f"{factory.__qualname__}()")


def _sequential_merge_batch_norm() -> list:
    return [SequentialMergeBatchNorm()]


CANONIZERS["sequential_merge_batch_norm"] = CanonizerSet(
    _sequential_merge_batch_norm,
    "from lrp_core.canonizers import SequentialMergeBatchNorm",
    "[SequentialMergeBatchNorm()]",
)


def canonizer_set_name(canonizers: list) -> str | None:
    """The registered set whose factory gives canonizers of the same classes (None for none)."""
    if not canonizers:
        return None
    classes = [type(c) for c in canonizers]
    for name, entry in CANONIZERS.items():
        if [type(c) for c in entry.factory()] == classes:
            return name
    raise ConfigError(
        "canonizers",
        f"the canonizers {[c.__name__ for c in classes]} match no registered set; register a "
        "factory with lrp_core.live.register_canonizers(name, factory)",
    )


# --- values ---
def encode_value(value: Any) -> Any:
    """A rule parameter as JSON data (tensors and stabilizers tagged)."""
    if isinstance(value, torch.Tensor):
        return {"tensor": value.tolist()}
    if isinstance(value, Stabilizer):
        return {"stabilizer": dict(vars(value))}
    if isinstance(value, tuple | list):
        return [encode_value(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError("params", f"non-finite number {value!r} cannot be exported")
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise ConfigError("params", f"cannot export a parameter of type {type(value).__name__}")


def decode_value(value: Any, field: str) -> Any:
    """Inverse of ``encode_value``; raises ``ConfigError`` naming ``field``."""
    if isinstance(value, dict):
        if set(value) == {"tensor"}:
            try:
                return torch.tensor(value["tensor"], dtype=torch.float32)
            except (TypeError, ValueError) as error:
                raise ConfigError(field, f"not a numeric tensor: {error}") from None
        if set(value) == {"stabilizer"} and isinstance(value["stabilizer"], dict):
            try:
                return Stabilizer(**value["stabilizer"])
            except (TypeError, ValueError) as error:
                raise ConfigError(field, f"bad stabilizer: {error}") from None
        raise ConfigError(field, f"unknown object {sorted(value)}; use a number, list or tag")
    if isinstance(value, list):
        return [decode_value(v, f"{field}[{i}]") for i, v in enumerate(value)]
    return value
