"""What the benchmarks share: the VGG-16-shaped network, the plain-gradient pass and a timer."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import nn

#: channels of the 13 convolutions, "M" for a 2×2 max pool
VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


def vgg16_shaped(num_classes: int = 1000) -> nn.Sequential:
    """13 3×3 convolutions with ReLU, 5 max pools, 7×7 adaptive average pool, 3 dense layers."""
    layers: list[nn.Module] = []
    channels = 3
    for item in VGG16:
        if item == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(channels, item, 3, padding=1), nn.ReLU()]
            channels = item
    layers += [
        nn.AdaptiveAvgPool2d(7),
        nn.Flatten(),
        nn.Linear(512 * 7 * 7, 4096),
        nn.ReLU(),
        nn.Linear(4096, 4096),
        nn.ReLU(),
        nn.Linear(4096, num_classes),
    ]
    return nn.Sequential(*layers).eval()


def gradient_pass(model: nn.Module, x: torch.Tensor, seed: torch.Tensor) -> torch.Tensor:
    """Forward, then the input gradient seeded with ``seed`` (the reference cost)."""
    x = x.detach().requires_grad_()
    (grad,) = torch.autograd.grad(model(x), x, seed)
    return grad


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """Run ``fn()``; return its wall-clock and process CPU seconds."""
    start, cpu_start = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - start, time.process_time() - cpu_start
