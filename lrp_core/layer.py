"""Explicit layers for operations models usually write inline, so that rules can target them."""

from __future__ import annotations

import torch
from torch import nn


class Sum(nn.Module):
    """Sum the input over one dimension.

    A residual addition ``a + b`` becomes ``Sum()(torch.stack([a, b], dim=-1))``; as a module of
    its own it can be given a rule (LRP composites assign it ``Norm``).

    Parameters
    ----------
    dim:
        The dimension to sum over (default: the last one, where ``torch.stack(..., dim=-1)`` puts
        the summands).
    """

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, int):
            raise TypeError(f"Sum: dim must be an int, got {dim!r} of type {type(dim).__name__}")
        self.dim = dim

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Return ``input.sum(dim=self.dim)``."""
        return torch.sum(input, dim=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


__all__ = ["Sum"]
