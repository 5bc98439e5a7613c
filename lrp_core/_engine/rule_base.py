"""What every rule shares: checked hyperparameters, equality and copies from them."""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

import torch


def check_number(value: Any, name: str, minimum: float = 0.0, strict: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < minimum or (strict and value == minimum):
        relation = ">" if strict else ">="
        raise ValueError(f"{name} must be {relation} {minimum}, got {value!r}")
    return float(value)


class RuleBase:
    """Equality, copies and hyperparameters from the constructor keywords."""

    _hyperparameters: tuple[str, ...] = ()
    store_grad_output = False

    def hyperparameters(self) -> dict[str, Any]:
        """The constructor keywords that re-create this rule."""
        return {name: getattr(self, name) for name in self._hyperparameters}

    def copy(self):
        return type(self)(**self.hyperparameters())

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        mine, theirs = self.hyperparameters(), other.hyperparameters()
        return all(_same(mine[k], theirs[k]) for k in mine)

    def __hash__(self) -> int:
        return hash(type(self).__name__)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({args})"


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (
            isinstance(a, torch.Tensor)
            and isinstance(b, torch.Tensor)
            and a.shape == b.shape
            and bool(torch.equal(a, b))
        )
    return a == b
