"""The work on one batch: attribution under one configuration, targets and scores.

:class:`BatchWorker` is what both engines run: in-process it works on the user's model (restored
on ``close``); on Ray each actor builds one from a copy of the model and keeps it for its life.
The attributor of the current configuration stays registered between batches, so the composite
and its canonizers are applied once per configuration, not once per batch.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from lrp_core.attribution import Gradient

from ._configs import RuleConfig
from ._errors import DatasetAttributionError
from ._samples import Batch
from ._scores import MODEL_SCORES, ScoreSettings, batch_scores

Target = str | Callable[[torch.Tensor, torch.Tensor | None], Any]


def check_target(target: Any) -> Target:
    """``"label"``, ``"prediction"`` or a callable ``target(output, labels) -> classes``."""
    if target in ("label", "prediction") or callable(target):
        return target
    raise DatasetAttributionError(
        f"target must be 'label', 'prediction' or a callable (output, labels) -> classes, got "
        f"{target!r}"
    )


def explained_classes(
    target: Target, output: torch.Tensor, labels: torch.Tensor | None
) -> torch.Tensor:
    """The class explained for each sample, ``(B,)`` long, checked against the output."""
    if target == "prediction":
        return output.argmax(1)
    if target == "label":
        if labels is None:
            raise DatasetAttributionError(
                "target='label' needs labels, and the dataset's items have none; give "
                "(image, label) items or use target='prediction'"
            )
        classes = labels
    else:
        classes = torch.as_tensor(target(output, labels))
    if classes.shape != output.shape[:1] or classes.is_floating_point() or classes.is_complex():
        raise DatasetAttributionError(
            f"target must give one integer class per sample ({output.shape[0]}), got "
            f"{classes.dtype} of shape {tuple(classes.shape)}"
        )
    classes = classes.long().to(output.device)
    if ((classes < 0) | (classes >= output.shape[1])).any():
        raise DatasetAttributionError(
            f"target gave a class outside 0..{output.shape[1] - 1}; check labels and outputs"
        )
    return classes


class BatchWorker:
    """Attributes batches of one data set under the configurations of a run.

    Parameters
    ----------
    model : torch.nn.Module
        The network, ``(B, C, H, W) -> (B, classes)``.
    configs : sequence of RuleConfig
        The run's configurations.
    target : str or callable
        See :func:`check_target`.
    settings : ScoreSettings
        The scores to compute.
    float16 : bool
        Store attributions as float16 (scores are computed before the cast).
    """

    def __init__(
        self,
        model: nn.Module,
        configs: Sequence[RuleConfig],
        target: Target,
        settings: ScoreSettings,
        float16: bool = False,
    ):
        self.model, self.configs, self.target = model, list(configs), target
        self.settings, self.float16 = settings, float16
        self.device = next((p.device for p in model.parameters()), torch.device("cpu"))
        wants_model = any(name in MODEL_SCORES for name in settings.names)
        self.score_model = copy.deepcopy(model).eval() if wants_model else None
        self._training = model.training
        self._current: tuple[int, Gradient] | None = None

    def _attributor(self, config: int) -> Gradient:
        if self._current is not None and self._current[0] == config:
            return self._current[1]
        self.close()
        self.model.eval()
        attributor = Gradient(self.model, self.configs[config].composite)
        attributor.__enter__()  # left by close(); a Ray actor keeps it for its life
        self._current = (config, attributor)
        return attributor

    def close(self) -> None:
        """Unregister the current configuration; the model is as before (mode included)."""
        current, self._current = self._current, None
        if current is not None:
            current[1].__exit__(None, None, None)
        self.model.train(self._training)

    def run(self, config: int, batch: Batch) -> dict[str, np.ndarray]:
        """Attribute ``batch`` under configuration ``config``; arrays for the store."""
        attributor = self._attributor(config)
        images = batch.images.to(self.device)
        labels = None if batch.labels is None else batch.labels.to(self.device)
        chosen: list[torch.Tensor] = []

        def seed(output: torch.Tensor) -> torch.Tensor:
            classes = explained_classes(self.target, output, labels)
            chosen.append(classes)
            return torch.nn.functional.one_hot(classes, output.shape[1]).to(output.dtype)

        output, relevance = attributor(images, seed)
        classes = chosen[0]
        seeds = seed(output)
        masks = None if batch.masks is None else batch.masks.to(self.device)
        scores = batch_scores(
            self.settings, relevance, seeds, images, masks, classes, self.score_model
        )
        attribution = relevance.detach().cpu()
        return {
            "attribution": attribution.half().numpy() if self.float16 else attribution.numpy(),
            "prediction": output.detach().float().cpu().numpy(),
            "label": seeds.float().cpu().numpy(),
            "target": classes.cpu().numpy(),
            "true_label": (
                np.full(len(images), -1) if labels is None else batch.labels.numpy()
            ).astype(np.int64),
            "index": batch.indices.numpy().astype(np.int64),
            **{f"score.{name}": value for name, value in scores.items()},
        }
