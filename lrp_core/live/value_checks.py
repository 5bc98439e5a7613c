"""Rule parameter values checked against the layer they are assigned to.

A value that Python holds but the model cannot compute with is refused at assignment, before any
backward pass, so a failed edit never leaves a rule that fails (or gives NaN) at every later
explanation:

- every number in a rule's parameters (plain numbers, tensors, a stabilizer's settings) must
  stay finite in the model's dtype (``gamma=1e300`` overflows float32 to inf), and a non-zero
  number must stay non-zero (``epsilon=1e-300`` underflows float32 to 0, a division by zero);
- input bounds (``ZBox``'s ``low``/``high``) given as tensors must broadcast to the layer's
  recorded input shape.

The error is a ``RuleParameterError`` whose message names the parameter, the layer and the
allowed range, and whose ``param`` attribute names the parameter.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from ..core import Hook, Stabilizer
from ..rules import ZBox
from .rule_registry import RuleParameterError, rule_label, rule_params

#: rule classes and their parameters that are bounds of the layer's input (tensors broadcast
#: to the input)
INPUT_BOUNDS: dict[type, tuple[str, ...]] = {ZBox: ("low", "high")}


def _numbers(value: Any, path: str) -> Iterator[tuple[str, float | torch.Tensor]]:
    """(path, number or tensor) for every numeric leaf of a parameter value."""
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        yield path, value
    elif isinstance(value, torch.Tensor):
        if value.dtype != torch.bool and not value.dtype.is_complex:
            yield path, value
    elif isinstance(value, Stabilizer):
        yield from _numbers(value.epsilon, f"{path}.epsilon")
    elif isinstance(value, tuple | list):
        for i, item in enumerate(value):
            yield from _numbers(item, f"{path}[{i}]")


def _out_of_range(value: float | torch.Tensor, dtype: torch.dtype) -> str | None:
    """Why ``value`` cannot be computed with in ``dtype`` (None: it can)."""
    info = torch.finfo(dtype)
    if isinstance(value, torch.Tensor):
        if value.numel() == 0:
            return None
        values = value.detach().to(torch.float64)
        if not bool(torch.isfinite(values).all()):
            return "contains NaN or inf"
        cast = values.to(dtype)
        if not bool(torch.isfinite(cast).all()):
            return f"holds values beyond ±{info.max:.4g}, which overflow {dtype} to inf"
        if bool(((cast == 0) & (values != 0)).any()):
            return f"holds non-zero values so small that {dtype} rounds them to 0"
        return None
    if not math.isfinite(value):
        return "is not a finite number"
    cast = float(torch.tensor(float(value), dtype=torch.float64).to(dtype))
    if not math.isfinite(cast):
        return f"is beyond ±{info.max:.4g}, which overflows {dtype} to inf"
    if cast == 0 and value != 0:
        return f"is non-zero but so small that {dtype} rounds it to 0"
    return None


def _parameter_error(
    rule: Hook, param: str, name: str, module: nn.Module, why: str, dtype: torch.dtype
) -> Exception:
    return RuleParameterError(
        f"{rule_label(rule)} on layer {name!r} ({type(module).__name__}): {param} {why}; give a "
        f"finite value {dtype} can hold: |value| <= {torch.finfo(dtype).max:.4g}, and a non-zero "
        f"value >= {torch.finfo(dtype).smallest_normal:.4g} in magnitude",
        param.split(".")[0].split("[")[0],
    )


def check_values(
    rule: Hook | None,
    name: str,
    module: nn.Module,
    dtype: torch.dtype,
    input_shapes: list | None = None,
) -> None:
    """Raise ``RuleParameterError`` if a parameter of ``rule`` cannot be computed on layer
    ``name`` (see the module docstring).

    Parameters
    ----------
    rule : Hook or None
        The rule (None, the plain gradient, has no parameters).
    name, module : str, nn.Module
        The layer it is assigned to.
    dtype : torch.dtype
        The model's floating point dtype.
    input_shapes : list, optional
        The layer's recorded input shapes (the first one is the input the bounds refer to).
    """
    if rule is None or not dtype.is_floating_point:
        return
    params = rule_params(rule)
    for key, value in params.items():
        for path, number in _numbers(value, key):
            why = _out_of_range(number, dtype)
            if why is not None:
                raise _parameter_error(rule, path, name, module, why, dtype)
    bounds = next((keys for cls, keys in INPUT_BOUNDS.items() if isinstance(rule, cls)), ())
    if not input_shapes:
        return
    shape = tuple(input_shapes[0])
    for key in bounds:
        value = params.get(key)
        if not isinstance(value, torch.Tensor):
            continue
        try:
            fits = torch.broadcast_shapes(tuple(value.shape), shape) == shape
        except RuntimeError:
            fits = False
        if not fits:
            why = (
                f"has shape {tuple(value.shape)}, which does not broadcast to the layer's input "
                f"shape {shape}; give a number or a tensor broadcastable to {shape}"
            )
            raise RuleParameterError(
                f"{rule_label(rule)} on layer {name!r} ({type(module).__name__}): {key} {why}", key
            )
