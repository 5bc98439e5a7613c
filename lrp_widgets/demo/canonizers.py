"""Canonizers that make LRP conserve relevance on the demo model.

Two structures of :class:`~lrp_widgets.demo.model.ShapeNet` need them:

- every Conv2d is followed by a BatchNorm2d. Batch norm is an affine map that LRP rules do not
  handle; merging it into the preceding convolution gives the same function as one linear layer.
  The pairs inside ``features`` and ``head`` are found by ``SequentialMergeBatchNorm``; the two
  pairs of the residual block (not in a Sequential) are named explicitly.
- the residual block adds ``out + identity`` with a plain ``+``, invisible to module hooks. An
  ``AttributeCanonizer`` gives the block instance a forward that routes the addition through a
  :class:`lrp_core.layer.Sum` module (``block.canonizer_sum``), which composites give the Norm
  rule. Only the instance changes; the :class:`ResidualBlock` class is never patched.
"""

from __future__ import annotations

import types
from typing import Any

import torch
from torch import nn

from .model import ResidualBlock

# (linear layer names, batch norm name) pairs that SequentialMergeBatchNorm cannot see.
RESIDUAL_BATCH_NORMS: list[tuple[tuple[str, ...], str]] = [
    (("block.conv1",), "block.bn1"),
    (("block.conv2",), "block.bn2"),
]


def _residual_forward(self: ResidualBlock, x: torch.Tensor) -> torch.Tensor:
    # Same computation as ResidualBlock.forward, with the addition done by a Sum module.
    identity = x
    out = self.relu1(self.bn1(self.conv1(x)))
    out = self.bn2(self.conv2(out))
    out = self.canonizer_sum(torch.stack([out, identity], dim=-1))
    return self.relu2(out)


def _residual_attributes(name: str, module: nn.Module) -> dict[str, Any] | None:
    """Instance attributes that route a ResidualBlock's addition through ``lrp_core.layer.Sum``."""
    from lrp_core.layer import Sum

    if isinstance(module, ResidualBlock):
        return {
            "forward": types.MethodType(_residual_forward, module),
            "canonizer_sum": Sum(),
        }
    return None


def demo_canonizers() -> list:
    """Fresh canonizers for the demo model: batch-norm merging and the residual ``Sum``.

    Pass them to a composite (``EpsilonPlusFlat(canonizers=demo_canonizers())``) or apply them
    directly; a new list is returned on every call, since canonizer instances hold state.

    Returns
    -------
        ``[SequentialMergeBatchNorm(), NamedMergeBatchNorm(...), AttributeCanonizer(...)]`` from
        :mod:`lrp_core.canonizers`.
    """
    from lrp_core.canonizers import (
        AttributeCanonizer,
        NamedMergeBatchNorm,
        SequentialMergeBatchNorm,
    )

    return [
        SequentialMergeBatchNorm(),
        NamedMergeBatchNorm(RESIDUAL_BATCH_NORMS),
        AttributeCanonizer(_residual_attributes),
    ]
