"""Small networks and helpers shared by the live-explanation tests."""

from __future__ import annotations

import torch
from torch import nn


def relu_net(bias: bool = False, dtype: torch.dtype = torch.float64, seed: int = 0) -> nn.Module:
    """Conv → ReLU → Conv → ReLU → AvgPool → Flatten → Linear → ReLU → Linear, 3 classes.

    Module names: "0" conv, "1" relu, "2" conv, "3" relu, "4" avgpool, "5" flatten,
    "6" linear, "7" relu, "8" linear. Input shape (N, 2, 8, 8).
    """
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1, bias=bias),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1, bias=bias),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(64, 8, bias=bias),
        nn.ReLU(),
        nn.Linear(8, 3, bias=bias),
    )
    return model.to(dtype).eval()


def batch(n: int = 3, dtype: torch.dtype = torch.float64, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, 8, 8, generator=generator, dtype=dtype)


class ForwardCounter:
    """Counts the forward calls of a module through a hook of its own (independent of the code
    under test)."""

    def __init__(self, module: nn.Module):
        self.count = 0
        self.handle = module.register_forward_hook(self._hook)

    def _hook(self, *args) -> None:
        self.count += 1


def one_hot(classes: list[int], n_classes: int, dtype=torch.float64) -> torch.Tensor:
    return torch.eye(n_classes, dtype=dtype)[classes]


def no_hooks_left(model: nn.Module) -> bool:
    return all(
        not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks
        for m in model.modules()
    )
