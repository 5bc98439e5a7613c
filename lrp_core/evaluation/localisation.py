"""Localisation scores against ground-truth masks: relevance mass accuracy and pointing game."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._checks import EvaluationInputError, check_mask, heatmap


def relevance_mass_accuracy(relevance: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Fraction of positive relevance inside the mask, per sample.

    With ``r`` the channel-summed map ``(H, W)`` and ``P = max(r, 0)``:
    ``accuracy = sum(P * mask) / sum(P)``, in ``[0, 1]``.

    Parameters
    ----------
    relevance : torch.Tensor
        ``(N, C, H, W)`` or ``(N, H, W)``.
    mask : torch.Tensor
        ``(N, H, W)`` or ``(N, 1, H, W)``, boolean or 0/1; not empty.

    Returns
    -------
    torch.Tensor
        ``(N,)`` float tensor.

    Raises
    ------
    EvaluationInputError
        on NaN, mismatched shapes, an empty mask or a map without
        positive relevance.
    """
    r = heatmap("relevance", relevance)
    mask = check_mask("mask", mask, r.shape)
    positive = r.clamp(min=0).flatten(1)
    total = positive.sum(1)
    none = (total == 0).nonzero().flatten().tolist()
    if none:
        raise EvaluationInputError(
            f"relevance has no positive values for sample(s) {none}; the fraction is undefined"
        )
    return (positive * mask.flatten(1)).sum(1) / total


def pointing_game(
    relevance: torch.Tensor, mask: torch.Tensor, tolerance: float = 0.0
) -> torch.Tensor:
    """Whether the maximum of the channel-summed map falls on the mask, per sample.

    The point is the first maximum of ``r`` in row-major order. It is a hit when some mask
    pixel lies within Euclidean distance ``tolerance`` (in pixels) of it; ``tolerance=0``
    requires the point itself to be in the mask.

    Parameters
    ----------
    relevance : torch.Tensor
        ``(N, C, H, W)`` or ``(N, H, W)``.
    mask : torch.Tensor
        ``(N, H, W)`` or ``(N, 1, H, W)``, boolean or 0/1; not empty.
    tolerance : float
        radius in pixels, ``>= 0``.

    Returns
    -------
    torch.Tensor
        ``(N,)`` boolean tensor.

    Raises
    ------
    EvaluationInputError
        on NaN, mismatched shapes, an empty mask or a negative tolerance.
    """
    r = heatmap("relevance", relevance)
    mask = check_mask("mask", mask, r.shape)
    if not isinstance(tolerance, int | float) or not tolerance >= 0 or math.isinf(tolerance):
        raise EvaluationInputError(f"tolerance must be a finite number >= 0, got {tolerance!r}")
    if tolerance > 0:
        radius = int(math.floor(tolerance))
        offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
        disk = (offsets[:, None] ** 2 + offsets[None, :] ** 2) <= tolerance**2
        # Dilating the mask with the disk marks every pixel within `tolerance` of the mask.
        mask = F.conv2d(mask[:, None].double(), disk[None, None].double(), padding=radius)[:, 0] > 0
    point = r.flatten(1).argmax(1)
    return mask.flatten(1).gather(1, point[:, None])[:, 0]
