"""A small float64 classifier and a data set with labels and masks, shared by the data-set tests
(and by the subprocess that the resume test kills)."""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from tests.lrp_core.live.live_models import relu_net

SAMPLES = 22  # batches of 4: five full ones and a short last one


def model() -> torch.nn.Module:
    """``relu_net`` with biases: (N, 2, 8, 8) -> 3 classes, float64, eval mode."""
    return relu_net(bias=True, seed=3)


def data(n: int = SAMPLES, masks: bool = True, seed: int = 5) -> TensorDataset:
    """``n`` images (N, 2, 8, 8) float64, labels in 0..2 and non-empty masks (N, 8, 8)."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(n, 2, 8, 8, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, 3, (n,), generator=generator)
    if not masks:
        return TensorDataset(images, labels)
    mask = torch.rand(n, 8, 8, generator=generator) < 0.3
    mask[:, 3, 3] = True
    return TensorDataset(images, labels, mask)
