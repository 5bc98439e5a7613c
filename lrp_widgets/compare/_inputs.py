"""Checks of what users give ``Compare(...)``, with messages that say how to fix it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from lrp_widgets._checks import check_inputs
from lrp_widgets.compare._configs import ColumnSpec, carried_canonizers, column_error, read_config


def check_model(model: Any) -> nn.Module:
    """``model`` if it is a ``torch.nn.Module``, else ``TypeError``."""
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"Compare(model, ...) needs a torch.nn.Module, got {type(model).__name__}; pass the "
            "network itself, e.g. Compare(load_model(), images)"
        )
    return model


def image_inputs(inputs: Any) -> torch.Tensor:
    """``inputs`` if it is a non-empty image batch ``[N, C, H, W]``; TypeError / ValueError."""
    inputs = check_inputs(inputs)
    if inputs.ndim != 4:
        raise ValueError(
            f"Compare needs images [N, C, H, W], got shape {tuple(inputs.shape)}; add the "
            "missing dimensions (e.g. x.unsqueeze(1) for one channel)"
        )
    return inputs


def check_masks(masks: Any, inputs: torch.Tensor) -> torch.Tensor | None:
    """Boolean masks ``[N, H, W]`` matching ``inputs`` from ``[N, H, W]`` or ``[N, 1, H, W]``
    bool / 0-1 tensors (None stays None)."""
    if masks is None:
        return None
    if not isinstance(masks, torch.Tensor):
        raise TypeError(f"masks must be a torch.Tensor [N, H, W], got {type(masks).__name__}")
    expected = (inputs.shape[0], *inputs.shape[2:])
    if masks.ndim == 4 and masks.shape[1] == 1:
        masks = masks[:, 0]
    if tuple(masks.shape) != expected:
        raise ValueError(
            f"masks must have shape [N, H, W] = {list(expected)} to match the inputs, got "
            f"{list(masks.shape)}"
        )
    if masks.dtype != torch.bool and not ((masks == 0) | (masks == 1)).all():
        raise ValueError("masks must be boolean or contain only 0 and 1")
    return masks.bool()


def check_target(target: Any, num_classes: int) -> int | None:
    """``target`` if it is None or a class index of the model's output."""
    if target is None:
        return None
    if isinstance(target, bool) or not isinstance(target, int) or not 0 <= target < num_classes:
        raise ValueError(
            "target must be None (each row's predicted class) or a class index in "
            f"0..{num_classes - 1}, got {target!r}"
        )
    return target


def read_specs(
    configs: Mapping[str, Any] | Iterable[Any], value_range: tuple[float, float]
) -> list[tuple[str | None, ColumnSpec]]:
    """(name or None, spec) per configuration of a mapping or a sequence; errors name the
    column (by its key, else by the configuration itself)."""
    if isinstance(configs, Mapping):
        named = [(str(name), config) for name, config in configs.items()]
    elif isinstance(configs, str | bytes) or not isinstance(configs, Iterable):
        named = [(None, configs)]
    else:
        named = [(None, config) for config in configs]
    specs = []
    for label, config in named:
        try:
            specs.append((label, read_config(config, value_range)))
        except (ValueError, TypeError) as error:
            raise column_error(label or repr(config)[:40], error) from None
    return specs


def shared_canonizers(canonizers: list | None, specs: list[tuple[Any, ColumnSpec]]) -> list:
    """The canonizers given, else those of the first configuration that carries some, else []."""
    if canonizers is not None:
        return list(canonizers)
    carried = (carried_canonizers(spec) for _, spec in specs)
    return next((c for c in carried if c is not None), [])


def open_live(model: nn.Module, inputs: torch.Tensor, canonizers: list, columns: int):
    """The live explanation all columns share (eval mode, canonizers applied, a term cache with
    room for every column).

    Raises
    ------
    RuntimeError
        the model is already hooked, e.g. by an open Explorer on the same model.
    """
    from lrp_core.core import HookConflictError
    from lrp_core.live import LiveExplanation

    try:
        return LiveExplanation(
            model, inputs, None, canonizers=canonizers, eval_mode=True, cache_size=columns + 1
        )
    except HookConflictError as error:
        raise HookConflictError(
            f"{error}. An Explorer stays usable as a Compare configuration after its close()"
        ) from None
