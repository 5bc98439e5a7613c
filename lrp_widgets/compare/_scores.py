"""Per-cell scores of the Compare widget: glue between columns and ``lrp_core.evaluation``.

Cheap scores (computed with every heatmap): conservation error, sparseness and, with masks,
relevance mass and pointing game. Long scores (``Compare.compute_scores``): faithfulness (the
area between the LeRF and MoRF region-perturbation curves) and class sensitivity. Each score is a
list of N values per column; a sample where a score is undefined (e.g. no positive relevance for
relevance mass) gets None instead of failing the whole column.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from lrp_core.evaluation import (
    EvaluationInputError,
    Progress,
    class_sensitivity,
    conservation_error,
    pointing_game,
    region_perturbation,
    relevance_mass_accuracy,
    sparseness,
)
from lrp_core.live import LiveResult

CHEAP_SCORES = ("conservation_error", "sparseness", "relevance_mass", "pointing_game")
LONG_SCORES = ("faithfulness", "class_sensitivity")
MASK_SCORES = ("relevance_mass", "pointing_game")

SCORE_INFO: dict[str, dict[str, Any]] = {
    "conservation_error": {
        "label": "Conservation error",
        "higher_is_better": False,
        "description": "|sum of input relevance - relevance put in at the output| / "
        "|relevance put in at the output| (0: nothing created or lost on the way to the input).",
    },
    "sparseness": {
        "label": "Sparseness",
        "higher_is_better": True,
        "description": "Gini index of the absolute relevance over all input elements "
        "(0: spread evenly, towards 1: concentrated on few elements).",
    },
    "relevance_mass": {
        "label": "Relevance mass",
        "higher_is_better": True,
        "description": "Fraction of the positive channel-summed relevance that lies inside the "
        "ground-truth mask.",
    },
    "pointing_game": {
        "label": "Pointing game",
        "higher_is_better": True,
        "description": "1 if the pixel of highest channel-summed relevance lies inside the "
        "ground-truth mask, else 0.",
    },
    "faithfulness": {
        "label": "Faithfulness (ABPC)",
        "higher_is_better": True,
        "description": "Area between the LeRF and MoRF region-perturbation curves of the target "
        "score: mean over steps of (least-relevant-first - most-relevant-first) score.",
    },
    "class_sensitivity": {
        "label": "Class sensitivity",
        "higher_is_better": False,
        "description": "Cosine similarity between the map of the explained class and the map of "
        "a randomly drawn other class (lower: the map depends more on the class).",
    },
}


@dataclass
class ScoreOptions:
    """Settings of the long scores.

    ``patch_size``: region side in pixels (None: image height // 16, at least 1);
    ``regions_per_step``: count or fraction of regions perturbed per step; ``baseline``: the
    replacement (see ``lrp_core.evaluation.make_baseline``); ``seed``: seed of the other class
    drawn for class sensitivity.
    """

    patch_size: int | None = None
    regions_per_step: int | float = 0.05
    baseline: str = "zeros"
    seed: int = 0

    def patch(self, height: int) -> int:
        """The patch size used for images of ``height`` pixels."""
        return self.patch_size if self.patch_size is not None else max(1, height // 16)

    def faithfulness_steps(self, height: int, width: int) -> int:
        """Model calls of one region perturbation (S + 1), for progress totals."""
        patch = self.patch(height)
        regions = math.ceil(height / patch) * math.ceil(width / patch)
        per_step = self.regions_per_step
        if isinstance(per_step, float):
            per_step = max(1, math.ceil(per_step * regions))
        return math.ceil(regions / per_step) + 1


def _value(value: float) -> float | None:
    return value if math.isfinite(value) else None


def per_sample(score: Callable[[slice], torch.Tensor], n: int) -> list[float | None]:
    """``score(slice)`` over the whole batch; where the batch fails, sample by sample with None
    for the samples on which the score is undefined."""
    try:
        return [_value(float(v)) for v in score(slice(None))]
    except EvaluationInputError:
        values: list[float | None] = []
        for i in range(n):
            try:
                values.append(_value(float(score(slice(i, i + 1))[0])))
            except EvaluationInputError:
                values.append(None)
        return values


def cheap_scores(result: LiveResult, masks: torch.Tensor | None) -> dict[str, list[float | None]]:
    """Conservation error, sparseness and (with ``masks`` ``[N, H, W]``) relevance mass and
    pointing game of one column's result, per sample."""
    relevance, n = result.relevance.detach(), result.relevance.shape[0]
    seed = result.seed.detach()
    scores = {
        "conservation_error": per_sample(lambda s: conservation_error(relevance[s], seed[s]), n),
        "sparseness": per_sample(lambda s: sparseness(relevance[s]), n),
    }
    if masks is not None:
        scores["relevance_mass"] = per_sample(
            lambda s: relevance_mass_accuracy(relevance[s], masks[s]), n
        )
        scores["pointing_game"] = per_sample(
            lambda s: pointing_game(relevance[s], masks[s]).double(), n
        )
    return scores


def faithfulness(
    model: Callable[[torch.Tensor], torch.Tensor],
    inputs: torch.Tensor,
    relevance: torch.Tensor,
    classes: list[int],
    options: ScoreOptions,
    progress: Progress | None,
) -> tuple[list[float | None], dict[str, Any]]:
    """ABPC per sample and the curves message ``{"morf", "lerf", "fractions"}`` of one column."""
    curves = region_perturbation(
        model,
        inputs,
        relevance,
        classes,
        patch_size=options.patch(inputs.shape[2]),
        regions_per_step=options.regions_per_step,
        baseline=options.baseline,
        progress=progress,
    )
    message = {
        "morf": curves.morf.tolist(),
        "lerf": curves.lerf.tolist(),
        "fractions": curves.fractions.tolist(),
    }
    return [_value(float(v)) for v in curves.abpc], message


def sensitivity(
    explain: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    inputs: torch.Tensor,
    classes: list[int],
    num_classes: int,
    options: ScoreOptions,
    progress: Progress | None,
) -> list[float | None]:
    """Class sensitivity (cosine similarity to a random other class's map) per sample."""
    generator = torch.Generator().manual_seed(options.seed)
    result = class_sensitivity(
        explain,
        inputs,
        classes,
        num_classes=num_classes,
        generator=generator,
        progress=progress,
    )
    return [_value(float(v)) for v in result.similarity]


def long_score_names(names: Any) -> list[str]:
    """The long scores asked for (None: all), checked.

    Raises
    ------
    ValueError
        an unknown name (cheap scores are computed with every heatmap).
    """
    wanted = list(LONG_SCORES) if names is None else list(names)
    unknown = [name for name in wanted if name not in LONG_SCORES]
    if unknown:
        raise ValueError(
            f"unknown long scores {unknown}; use {list(LONG_SCORES)} ({list(CHEAP_SCORES)} are "
            "computed with every heatmap)"
        )
    return wanted


class ScoreTable:
    """Scores and perturbation curves per column id, and their trait messages."""

    def __init__(self, with_masks: bool):
        names = (
            CHEAP_SCORES if with_masks else tuple(n for n in CHEAP_SCORES if n not in MASK_SCORES)
        )
        self.names = (*names, *LONG_SCORES)
        self._values: dict[str, dict[int, list]] = {name: {} for name in self.names}
        self._curves: dict[int, dict[str, Any]] = {}

    def set_cheap(self, column_id: int, scores: dict[str, list]) -> None:
        """New cheap scores of a recomputed column; its long scores and curves are dropped."""
        self.drop(column_id)
        for name, values in scores.items():
            self._values[name][column_id] = values

    def set_long(
        self, name: str, column_id: int, values: list, curves: dict[str, Any] | None = None
    ) -> None:
        """Store a long score of a column (and its curves, for faithfulness)."""
        self._values[name][column_id] = values
        if curves is not None:
            self._curves[column_id] = curves

    def drop(self, column_id: int) -> None:
        """Forget everything about a column."""
        for by_column in self._values.values():
            by_column.pop(column_id, None)
        self._curves.pop(column_id, None)

    def message(self, column_ids: list[int]) -> dict[str, dict[str, list]]:
        """The ``scores`` trait: name -> str(column id) -> values, for these columns."""
        return {
            name: {str(i): by_column[i] for i in column_ids if i in by_column}
            for name, by_column in self._values.items()
        }

    def curves_message(self, column_ids: list[int]) -> dict[str, dict[str, Any]]:
        """The ``curves`` trait: str(column id) -> MoRF/LeRF curves, for these columns."""
        return {str(i): self._curves[i] for i in column_ids if i in self._curves}
