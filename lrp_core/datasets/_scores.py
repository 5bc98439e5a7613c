"""Per-sample scores of a batch, from ``lrp_core.evaluation`` (nothing re-implemented here).

A score that is undefined for a sample (an all-zero map for sparseness, no positive relevance for
relevance mass) is NaN for that sample instead of failing the batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lrp_core.evaluation import (
    EvaluationInputError,
    conservation_error,
    pointing_game,
    region_perturbation,
    relevance_mass_accuracy,
    sparseness,
)

from ._errors import DatasetAttributionError

SCORES = ("conservation_error", "sparseness", "relevance_mass", "pointing_game", "faithfulness")
MASK_SCORES = ("relevance_mass", "pointing_game")
MODEL_SCORES = ("faithfulness",)


@dataclass(frozen=True)
class ScoreSettings:
    """Which scores to compute, and how faithfulness perturbs.

    Faithfulness is :func:`lrp_core.evaluation.region_perturbation` (ABPC) on square regions of
    ``patch_size`` pixels (None: image height // 16, at least 1) replaced by ``baseline``, with
    at most ``faithfulness_steps`` steps (regions per step = ceil(regions / steps)).
    """

    names: tuple[str, ...] = ()
    faithfulness_steps: int = 10
    patch_size: int | None = None
    baseline: str = "zeros"

    def faithfulness_plan(self, height: int, width: int) -> tuple[int, int]:
        """``(patch_size, regions_per_step)`` for images of ``height`` x ``width``."""
        patch = self.patch_size if self.patch_size is not None else max(1, height // 16)
        regions = math.ceil(height / patch) * math.ceil(width / patch)
        return patch, math.ceil(regions / self.faithfulness_steps)


def score_settings(
    scores: Sequence[str] | None, has_masks: bool, faithfulness_steps: int, patch_size: int | None
) -> ScoreSettings:
    """Checked settings; ``scores=None`` means every score the data allows."""
    if scores is None:
        names = tuple(s for s in SCORES if has_masks or s not in MASK_SCORES)
    elif isinstance(scores, str):
        raise DatasetAttributionError(f"scores must be a list of names, got the string {scores!r}")
    else:
        names = tuple(scores)
    unknown = [s for s in names if s not in SCORES]
    if unknown:
        raise DatasetAttributionError(f"scores: unknown {unknown}; choose from {list(SCORES)}")
    if not has_masks and any(s in MASK_SCORES for s in names):
        raise DatasetAttributionError(
            f"scores: {[s for s in names if s in MASK_SCORES]} need ground-truth masks, and the "
            "dataset's items have none; give (image, label, mask) items or drop these scores"
        )
    if isinstance(faithfulness_steps, bool) or not isinstance(faithfulness_steps, int):
        raise DatasetAttributionError("faithfulness_steps must be an int >= 1")
    if faithfulness_steps < 1:
        raise DatasetAttributionError(f"faithfulness_steps must be >= 1, got {faithfulness_steps}")
    if patch_size is not None and (not isinstance(patch_size, int) or patch_size < 1):
        raise DatasetAttributionError(f"patch_size must be None or an int >= 1, got {patch_size}")
    return ScoreSettings(names, faithfulness_steps, patch_size)


def _per_sample(score: Callable[[slice], torch.Tensor], n: int) -> np.ndarray:
    """``score`` over the batch; where that fails, sample by sample with NaN where undefined."""
    try:
        return score(slice(None)).double().numpy().astype(np.float32)
    except EvaluationInputError:
        values = np.full(n, np.nan, dtype=np.float32)
        for i in range(n):
            try:
                values[i] = float(score(slice(i, i + 1))[0])
            except EvaluationInputError:
                pass
        return values


def batch_scores(
    settings: ScoreSettings,
    relevance: torch.Tensor,
    seed: torch.Tensor,
    images: torch.Tensor,
    masks: torch.Tensor | None,
    targets: torch.Tensor,
    model: nn.Module | None,
) -> dict[str, np.ndarray]:
    """The scores of ``settings`` for one batch, each ``(B,)`` float32.

    ``model`` is an unhooked copy for the model-based scores (faithfulness).
    """
    n = relevance.shape[0]
    computations: dict[str, Callable[[slice], torch.Tensor]] = {
        "conservation_error": lambda s: conservation_error(relevance[s], seed[s]),
        "sparseness": lambda s: sparseness(relevance[s]),
    }
    if masks is not None:
        computations["relevance_mass"] = lambda s: relevance_mass_accuracy(relevance[s], masks[s])
        computations["pointing_game"] = lambda s: pointing_game(relevance[s], masks[s])
    if model is not None:
        patch, per_step = settings.faithfulness_plan(*images.shape[2:])
        computations["faithfulness"] = lambda s: (
            region_perturbation(
                model,
                images[s],
                relevance[s],
                targets[s],
                patch_size=patch,
                regions_per_step=per_step,
                baseline=settings.baseline,
            ).abpc
        )
    return {name: _per_sample(computations[name], n) for name in settings.names}
