"""``Run``: everything the engines need about one call of ``attribute_dataset``.

Both engines receive one (the Ray engine ships it to every actor), so it holds plain values: the
model, the data set, the batch plan, the resolved configurations and the settings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn
from torch.utils.data import Dataset

from ._configs import RuleConfig
from ._samples import Plan
from ._scores import ScoreSettings
from ._worker import BatchWorker, Target


@dataclass
class Run:
    """Everything the engines need about one call."""

    model: nn.Module
    dataset: Dataset
    plan: Plan
    configs: list[RuleConfig]
    target: Target
    settings: ScoreSettings
    float16: bool
    store: Path
    loader_workers: int

    def worker(self) -> BatchWorker:
        """A worker for this run's configurations, on ``model`` (restored on its ``close``)."""
        return BatchWorker(self.model, self.configs, self.target, self.settings, self.float16)

    def manifest(self, config: RuleConfig, image_shape: list[int]) -> dict[str, Any]:
        """The settings a resumed run must share with the stopped one (JSON values only)."""
        target = self.target if isinstance(self.target, str) else _qualname(self.target)
        return {
            "config": config.config_json,
            "samples": self.plan.samples,
            "batch_size": self.plan.batch_size,
            "image_shape": image_shape,
            "target": target,
            "scores": list(self.settings.names),
            "faithfulness_steps": self.settings.faithfulness_steps,
            "patch_size": self.settings.patch_size,
            "baseline": self.settings.baseline,
            "float16": self.float16,
        }


def _qualname(function: Callable) -> str:
    return f"{getattr(function, '__module__', '?')}.{getattr(function, '__qualname__', '?')}"
