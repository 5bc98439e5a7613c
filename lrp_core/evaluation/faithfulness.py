"""Faithfulness: region perturbation (pixel flipping) along MoRF and LeRF orders.

Definition. The map ``r = sum_c relevance`` ``(H, W)`` is cut into non-overlapping square
regions of ``patch_size`` pixels (the last row/column of regions may be smaller); a region's
relevance is the sum of ``r`` over it. Regions are ranked by that sum, most relevant first
(MoRF) and least relevant first (LeRF); ties keep row-major order. With ``K`` regions and
``m`` regions per step there are ``S = ceil(K / m)`` steps; at step ``k = 0..S`` the first
``min(k m, K)`` regions of the order are replaced (all channels) by the baseline, and the
model's target score ``f_k`` (``output[n, target_n]``) is recorded. Both curves start at the
clean score and end at the score of the full baseline.

``ABPC = 1/(S+1) * sum_k (f_k^LeRF - f_k^MoRF)``, the area between the curves normalised by the
number of points; large means the relevance ranks the regions the model relies on first.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ._checks import EvaluationInputError, Progress, check_tensor, report

Baseline = str | torch.Tensor | Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class PerturbationCurves:
    """Result of :func:`region_perturbation`.

    Attributes
    ----------
    morf : torch.Tensor
        ``(N, S+1)`` target scores, most relevant regions removed first.
    lerf : torch.Tensor
        ``(N, S+1)`` target scores, least relevant regions removed first.
    fractions : torch.Tensor
        ``(S+1,)`` fraction of regions replaced at each step.
    abpc : torch.Tensor
        ``(N,)`` area between the curves, ``mean_k(lerf_k - morf_k)``.
    targets : torch.Tensor
        ``(N,)`` explained classes.
    """

    morf: torch.Tensor
    lerf: torch.Tensor
    fractions: torch.Tensor
    abpc: torch.Tensor
    targets: torch.Tensor


def _gaussian_blur(inputs: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=inputs.dtype)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = inputs.shape[1]
    out = F.pad(inputs, (radius, radius, radius, radius), mode="replicate")
    out = F.conv2d(out, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(out, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def make_baseline(
    inputs: torch.Tensor, baseline: Baseline, blur_sigma: float = 2.0
) -> torch.Tensor:
    """The replacement values, shaped like ``inputs``.

    ``"zeros"``: 0; ``"mean"``: each sample's per-channel mean; ``"blur"``: a Gaussian blur
    (standard deviation ``blur_sigma`` pixels, replicate padding) of the input; a tensor
    broadcastable to ``inputs``; or a callable ``baseline(inputs) -> tensor``.
    """
    if isinstance(baseline, str):
        if baseline == "zeros":
            return torch.zeros_like(inputs)
        if baseline == "mean":
            return inputs.mean((2, 3), keepdim=True).expand_as(inputs)
        if baseline == "blur":
            if not blur_sigma > 0:
                raise EvaluationInputError(f"blur_sigma must be > 0, got {blur_sigma}")
            return _gaussian_blur(inputs, blur_sigma)
        raise EvaluationInputError(
            f"baseline must be 'zeros', 'mean', 'blur', a tensor or a callable, got {baseline!r}"
        )
    value = baseline(inputs) if callable(baseline) else baseline
    value = check_tensor("baseline", value)
    try:
        return torch.broadcast_to(value, inputs.shape).to(inputs.dtype)
    except RuntimeError as error:
        raise EvaluationInputError(
            f"baseline of shape {tuple(value.shape)} does not broadcast to the inputs "
            f"{tuple(inputs.shape)}"
        ) from error


def region_ranks(relevance: torch.Tensor, patch_size: int, descending: bool) -> torch.Tensor:
    """Rank of every pixel's region, ``(N, H, W)`` long: 0 is perturbed first."""
    r = relevance.sum(1) if relevance.ndim == 4 else relevance
    n, h, w = r.shape
    rows, cols = math.ceil(h / patch_size), math.ceil(w / patch_size)
    region = (torch.arange(h)[:, None] // patch_size) * cols + torch.arange(w)[None] // patch_size
    sums = torch.zeros(n, rows * cols, dtype=torch.float64)
    sums.index_add_(1, region.flatten(), r.flatten(1).double())
    order = sums.argsort(dim=1, descending=descending, stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(order.shape[1]).expand_as(order).contiguous())
    return rank.gather(1, region.flatten().expand(n, -1)).view(n, h, w)


def _targets(value: int | Sequence[int] | torch.Tensor | None, clean: torch.Tensor) -> torch.Tensor:
    n, classes = clean.shape
    if value is None:
        return clean.argmax(1)
    targets = torch.as_tensor(value, device=clean.device)
    if targets.is_floating_point() or targets.dtype == torch.bool:
        raise EvaluationInputError(f"target must hold integer class indices, got {targets.dtype}")
    targets = targets.long().reshape(-1).expand(n) if targets.numel() == 1 else targets.long()
    if targets.shape != (n,):
        raise EvaluationInputError(f"target must give 1 or {n} classes, got {targets.numel()}")
    if ((targets < 0) | (targets >= classes)).any():
        raise EvaluationInputError(f"target holds a class index outside 0..{classes - 1}")
    return targets


def region_perturbation(
    model: Callable[[torch.Tensor], torch.Tensor],
    inputs: torch.Tensor,
    relevance: torch.Tensor,
    target: int | Sequence[int] | torch.Tensor | None = None,
    *,
    patch_size: int = 1,
    regions_per_step: int | float = 0.1,
    baseline: Baseline = "zeros",
    blur_sigma: float = 2.0,
    batch_size: int | None = None,
    progress: Progress | None = None,
) -> PerturbationCurves:
    """MoRF and LeRF perturbation curves and their area (ABPC); see the module docstring.

    Parameters
    ----------
    model : Callable[[torch.Tensor], torch.Tensor]
        maps ``(B, C, H, W)`` to scores ``(B, classes)``; called under ``torch.no_grad``
        and left unchanged (put it in eval mode yourself).
    inputs : torch.Tensor
        ``(N, C, H, W)``.
    relevance : torch.Tensor
        ``(N, C, H, W)`` like ``inputs`` or channel-summed ``(N, H, W)``.
    target : int | Sequence[int] | torch.Tensor, optional
        class per sample (int, sequence or tensor); ``None``: the predicted class.
    patch_size : int
        side of the square regions in pixels.
    regions_per_step : int | float
        an int count, or a float fraction in ``(0, 1]`` of all regions
        (rounded up to at least one region).
    baseline : Baseline
        ``"zeros"``, ``"mean"``, ``"blur"``, a tensor or a callable, see
        :func:`make_baseline`.
    blur_sigma : float
        standard deviation of the ``"blur"`` baseline.
    batch_size : int, optional
        most images per model call (``None``: one call per step, ``2 N`` images).
    progress : Progress, optional
        called as ``progress(k, S + 1)`` after step ``k`` of both curves is scored.

    Raises
    ------
    EvaluationInputError
        on bad shapes, NaN, bad step sizes or targets.
    Cancelled
        when ``progress`` cancels.
    """
    inputs = check_tensor("inputs", inputs, ndim=(4,))
    relevance = check_tensor("relevance", relevance, ndim=(3, 4))
    summed = inputs.shape[:1] + inputs.shape[2:]
    if relevance.shape not in (inputs.shape, summed):
        raise EvaluationInputError(
            f"relevance has shape {tuple(relevance.shape)}; for inputs of shape "
            f"{tuple(inputs.shape)} give {tuple(inputs.shape)} or channel-summed {tuple(summed)}"
        )
    if isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size < 1:
        raise EvaluationInputError(f"patch_size must be an int >= 1, got {patch_size!r}")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise EvaluationInputError(f"batch_size must be None or an int >= 1, got {batch_size!r}")
    h, w = inputs.shape[2:]
    regions = math.ceil(h / patch_size) * math.ceil(w / patch_size)
    if isinstance(regions_per_step, bool) or not isinstance(regions_per_step, int | float):
        raise EvaluationInputError("regions_per_step must be an int count or a float fraction")
    if isinstance(regions_per_step, float):
        if not 0 < regions_per_step <= 1:
            raise EvaluationInputError(
                f"regions_per_step as a fraction must be in (0, 1], got {regions_per_step}"
            )
        per_step = max(1, math.ceil(regions_per_step * regions))
    elif regions_per_step < 1:
        raise EvaluationInputError(f"regions_per_step must be >= 1, got {regions_per_step}")
    else:
        per_step = regions_per_step
    steps = math.ceil(regions / per_step)
    replacement = make_baseline(inputs, baseline, blur_sigma)
    ranks = torch.stack(
        [region_ranks(relevance, patch_size, descending=d) for d in (True, False)]
    )  # (2, N, H, W): MoRF, LeRF

    n = inputs.shape[0]
    scores = torch.empty(2, n, steps + 1, dtype=torch.float64)
    targets = None
    with torch.no_grad():
        for k in range(steps + 1):
            removed = (ranks < min(k * per_step, regions))[:, :, None]  # (2, N, 1, H, W)
            batch = torch.where(removed, replacement, inputs).flatten(0, 1)
            chunk = batch.shape[0] if batch_size is None else batch_size
            output = torch.cat([model(part) for part in batch.split(chunk)])
            if output.ndim != 2 or output.shape[0] != 2 * n:
                raise EvaluationInputError(
                    f"model must return (batch, classes) scores, got shape {tuple(output.shape)}"
                )
            if targets is None:
                targets = _targets(target, output[:n])
            picked = output.view(2, n, -1).gather(2, targets.expand(2, n)[..., None])[..., 0]
            scores[:, :, k] = picked.double()
            report(progress, k + 1, steps + 1)
    morf, lerf = scores.to(inputs.dtype)
    fractions = torch.tensor(
        [min(k * per_step, regions) / regions for k in range(steps + 1)], dtype=inputs.dtype
    )
    abpc = (scores[1] - scores[0]).mean(1).to(inputs.dtype)
    return PerturbationCurves(morf=morf, lerf=lerf, fractions=fractions, abpc=abpc, targets=targets)
