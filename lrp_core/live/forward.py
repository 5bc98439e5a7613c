"""Forward side of a live explanation: input checks, the one forward pass, warnings and errors."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..core import RemovableHandleList
from ..map_composites import PlainGradientFallbackWarning


class LiveInputError(ValueError):
    """Inputs the model cannot explain (wrong shape, NaN/inf, ...)."""


class RuleFailedError(RuntimeError):
    """A rule raised while computing relevance; the message names the module."""


class TrainingModeWarning(UserWarning):
    """The model is in training mode (dropout and batch norm behave differently)."""


def warn_fallbacks(owner: str, names: list[str]) -> None:
    """One ``PlainGradientFallbackWarning`` listing the modules that keep the plain gradient."""
    warnings.warn(
        f"{owner}: no rule matched {len(names)} module(s), which keep the plain gradient: "
        f"{', '.join(names)}; assign them a rule if their relevance matters",
        PlainGradientFallbackWarning,
        stacklevel=5,
    )


def checked_inputs(model: nn.Module, inputs: Any) -> torch.Tensor:
    """A detached copy of ``inputs`` that requires grad, after checking type, dtype and values.

    Raises ``TypeError`` or ``LiveInputError`` naming ``inputs``.
    """
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(f"inputs must be a torch.Tensor, got {type(inputs).__name__}")
    param = next(model.parameters(), None)
    if not inputs.is_floating_point():
        raise TypeError(
            f"inputs: dtype {inputs.dtype} is not a floating point type; convert with "
            f"inputs.to({param.dtype if param is not None else torch.float32})"
        )
    if param is not None and inputs.dtype != param.dtype:
        raise TypeError(
            f"inputs: dtype {inputs.dtype} differs from the model's {param.dtype}; convert "
            f"with inputs.to({param.dtype}) or the model with model.to({inputs.dtype})"
        )
    if inputs.ndim == 0:
        raise LiveInputError("inputs: need a batch axis, got a scalar")
    bad = int((~torch.isfinite(inputs)).sum())
    if bad:
        raise LiveInputError(f"inputs: {bad} value(s) are NaN or inf; clean the batch first")
    return inputs.detach().clone().requires_grad_()


def run_forward(
    model: nn.Module, inputs: Any
) -> tuple[torch.Tensor, torch.Tensor, dict[str, tuple[list, list]]]:
    """Check ``inputs``, run ``model`` once with gradients, record each module's first shapes.

    Returns ``(input leaf, output, {name: (input shapes, output shapes)})``. Raises
    ``LiveInputError`` naming ``inputs`` when the model fails on them.
    """
    x = checked_inputs(model, inputs)
    shapes: dict[str, tuple[list, list]] = {}
    recorders = RemovableHandleList(
        module.register_forward_hook(_shape_recorder(name, shapes))
        for name, module in model.named_modules()
    )
    try:
        with torch.enable_grad():
            output = model(x)
    except Exception as error:
        raise LiveInputError(
            f"inputs: the model cannot run on inputs of shape {tuple(x.shape)} and dtype "
            f"{x.dtype}: {type(error).__name__}: {error}"
        ) from error
    finally:
        recorders.remove()
    if not isinstance(output, torch.Tensor) or output.ndim < 1:
        raise LiveInputError(
            "the model must return one tensor with a batch axis; wrap it in a module that "
            "selects the output to explain"
        )
    if not output.requires_grad:
        raise LiveInputError("the model output does not depend on inputs (no gradient)")
    return x, output, shapes


def _shape_recorder(name: str, shapes: dict) -> Callable:
    def record(module: nn.Module, args: tuple, output: Any) -> None:
        if name in shapes:
            return
        ins = [tuple(a.shape) for a in args if isinstance(a, torch.Tensor)]
        outs = output if isinstance(output, tuple | list) else (output,)
        shapes[name] = (ins, [tuple(o.shape) for o in outs if isinstance(o, torch.Tensor)])

    return record
