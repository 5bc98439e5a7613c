"""Shared pieces of the Compare tests: a small CNN, a batch with masks, and the engine reference.

The reference relevance of a column is computed without the widget and without a live
explanation: ``lrp_core.attribution.Gradient`` with the column's composite on a fresh copy of the
model, seeded with the one-hot vector of the explained class (one forward and backward per call).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from lrp_core.attribution import Gradient

N, C, H, W = 3, 3, 8, 8
CLASSES = 4


def small_model() -> nn.Module:
    """Conv-ReLU-Conv-ReLU-pool-flatten-linear on 8x8 RGB images, 4 classes."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(C, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(4 * (H // 2) * (W // 2), CLASSES),
    ).eval()


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs ``[N, C, H, W]`` in [-1, 1] and non-empty square masks ``[N, H, W]``."""
    inputs = torch.rand(N, C, H, W, generator=torch.Generator().manual_seed(1)) * 2 - 1
    masks = torch.zeros(N, H, W, dtype=torch.bool)
    for i in range(N):
        masks[i, i : i + 4, 2 : 2 + 4] = True
    return inputs, masks


def engine_relevance(inputs: torch.Tensor, composite, classes, model=None) -> torch.Tensor:
    """Relevance of ``classes`` by the engine alone (see the module docstring), on a fresh
    ``small_model()`` unless ``model`` is given."""
    fresh = small_model() if model is None else model
    seed = torch.nn.functional.one_hot(torch.as_tensor(classes), CLASSES).to(inputs.dtype)
    with Gradient(fresh, composite) as attributor:
        _, relevance = attributor(inputs, seed)
    return relevance


def decode(message: dict) -> np.ndarray:
    """The array of a binary trait value, from its bytes, dtype and shape."""
    return np.frombuffer(message["data"], dtype=message["dtype"]).reshape(message["shape"])
