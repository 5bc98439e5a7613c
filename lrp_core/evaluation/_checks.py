"""Argument checks and progress reporting shared by the evaluation scores."""

from __future__ import annotations

from collections.abc import Callable

import torch

Progress = Callable[[int, int], object]
"""``progress(step, total)``; returning ``False`` or raising :class:`Cancelled` stops the score."""


class EvaluationInputError(ValueError):
    """An argument of an evaluation score has the wrong shape, type or values."""


class Cancelled(Exception):
    """Raised when a progress callback asked to stop a long evaluation.

    A callback may raise it itself, or return ``False``; either way the score stops and the
    exception reaches the caller, with nothing left changed.
    """


def report(progress: Progress | None, step: int, total: int) -> None:
    """Call ``progress(step, total)`` and raise :class:`Cancelled` if it returned ``False``."""
    if progress is not None and progress(step, total) is False:
        raise Cancelled(f"cancelled by the progress callback at step {step} of {total}")


def check_tensor(name: str, value: object, ndim: tuple[int, ...] | None = None) -> torch.Tensor:
    """Return ``value`` if it is a tensor without NaN/inf and of an allowed rank, else raise."""
    if not isinstance(value, torch.Tensor):
        raise EvaluationInputError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if ndim is not None and value.ndim not in ndim:
        raise EvaluationInputError(
            f"{name} must have {' or '.join(map(str, ndim))} dimensions, got shape "
            f"{tuple(value.shape)}"
        )
    if value.is_floating_point() and not torch.isfinite(value).all():
        raise EvaluationInputError(f"{name} contains NaN or infinite values; clean it first")
    return value


def check_same_shape(name: str, value: torch.Tensor, other_name: str, other: torch.Tensor) -> None:
    """Raise if ``value`` and ``other`` differ in shape."""
    if value.shape != other.shape:
        raise EvaluationInputError(
            f"{name} has shape {tuple(value.shape)} but {other_name} has shape "
            f"{tuple(other.shape)}; they must match"
        )


def heatmap(name: str, relevance: object) -> torch.Tensor:
    """Channel-summed relevance ``(N, H, W)`` from a ``(N, C, H, W)`` or ``(N, H, W)`` tensor."""
    relevance = check_tensor(name, relevance, ndim=(3, 4))
    return relevance.sum(1) if relevance.ndim == 4 else relevance


def check_mask(name: str, mask: object, shape: torch.Size) -> torch.Tensor:
    """Boolean mask ``(N, H, W)`` from a ``(N, H, W)`` or ``(N, 1, H, W)`` 0/1 tensor.

    Raises if it does not match ``shape`` or if a sample's mask is empty.
    """
    mask = check_tensor(name, mask, ndim=(3, 4))
    if mask.ndim == 4:
        if mask.shape[1] != 1:
            raise EvaluationInputError(
                f"{name} must have one channel, got shape {tuple(mask.shape)}"
            )
        mask = mask[:, 0]
    if mask.shape != shape:
        raise EvaluationInputError(
            f"{name} has spatial shape {tuple(mask.shape)} but the relevance map has "
            f"{tuple(shape)}; give one mask per sample of the same height and width"
        )
    if mask.dtype != torch.bool:
        if not ((mask == 0) | (mask == 1)).all():
            raise EvaluationInputError(f"{name} must be boolean or contain only 0 and 1")
        mask = mask.bool()
    empty = (~mask.flatten(1).any(1)).nonzero().flatten().tolist()
    if empty:
        raise EvaluationInputError(
            f"{name} is empty for sample(s) {empty}; every sample needs a non-empty mask"
        )
    return mask
