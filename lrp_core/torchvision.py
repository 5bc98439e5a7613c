"""Canonizers for torchvision's VGG and ResNet models.

Importing this module never imports torchvision: the torchvision classes are looked up when a
canonizer is applied, and only if no class was passed in. Without torchvision installed, applying
a canonizer that needs it raises ``TorchvisionNotAvailableError`` (an ``ImportError``). Passing the
classes explicitly (``ResNetBasicBlockCanonizer(block_type=MyBlock)``) makes the canonizers work on
look-alike models with the same attribute names, without torchvision.
"""

from __future__ import annotations

import importlib
import types
import warnings
from collections.abc import Callable

import torch
from torch import nn

from .canonizers import (
    AttributeCanonizer,
    Canonizer,
    CompositeCanonizer,
    NamedMergeBatchNorm,
    SequentialMergeBatchNorm,
    apply_all,
)
from .layer import Sum


class TorchvisionNotAvailableError(ImportError):
    """A torchvision canonizer needs torchvision, which is not installed."""


def _torchvision_class(owner: str, argument: str, module_path: str, name: str) -> type:
    """Import ``module_path.name`` from torchvision, or explain how to do without it."""
    try:
        module = importlib.import_module(module_path)
    except ImportError as error:
        raise TorchvisionNotAvailableError(
            f"{owner} needs torchvision to find {module_path}.{name}, but torchvision is not "
            f"installed; install torchvision, or pass the class to match as {owner}({argument}=...)"
        ) from error
    return getattr(module, name)


class _PartCanonizer(Canonizer):
    """A canonizer that rewrites each matching part (sub-module) of a model with other canonizers.

    Subclasses give ``_part_type()`` (the class to match) and ``_canonize(part)`` (the registered
    instances rewriting one part). ``register(part)`` rewrites one part; ``remove()`` undoes it.
    """

    def _part_type(self) -> type:
        raise NotImplementedError

    def _canonize(self, part: nn.Module) -> list[Canonizer]:
        raise NotImplementedError

    def _accepts(self, part: nn.Module, part_type: type) -> bool:
        return True

    def apply(self, root_module: nn.Module) -> list[Canonizer]:
        """Register a copy of this canonizer on every matching sub-module of ``root_module``."""
        part_type = self._part_type()
        parts = [
            module
            for module in root_module.modules()
            if isinstance(module, part_type) and self._accepts(module, part_type)
        ]

        def step(part: nn.Module) -> list[Canonizer]:
            instance = self.copy()
            instance.register(part)
            return [instance]

        return apply_all(lambda part=part: step(part) for part in parts)

    def register(self, part: nn.Module) -> None:
        """Rewrite ``part``."""
        if getattr(self, "_instances", None):
            raise RuntimeError(f"{type(self).__name__} instance is already registered; use copy()")
        self._instances = self._canonize(part)

    def remove(self) -> None:
        """Undo the rewrite of the registered part."""
        for instance in reversed(getattr(self, "_instances", [])):
            instance.remove()
        self._instances = []


def _basic_block_forward(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """torchvision's BasicBlock forward with the residual addition routed through a Sum module."""
    identity = x
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.bn2(self.conv2(out))
    if self.downsample is not None:
        identity = self.downsample(x)
    out = self.canonizer_sum(torch.stack([out, identity], dim=-1))
    return self.relu(out)


def _bottleneck_forward(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """torchvision's Bottleneck forward with the residual addition routed through a Sum module."""
    identity = x
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.relu(self.bn2(self.conv2(out)))
    out = self.bn3(self.conv3(out))
    if self.downsample is not None:
        identity = self.downsample(x)
    out = self.canonizer_sum(torch.stack([out, identity], dim=-1))
    return self.relu(out)


class _ResidualBlockCanonizer(_PartCanonizer):
    """Merge a residual block's batch norms and route its addition through ``canonizer_sum``."""

    _torchvision_name = ""
    _conv_bn_pairs: tuple[tuple[str, str], ...] = ()
    _forward: Callable[[nn.Module, torch.Tensor], torch.Tensor]

    def __init__(self, block_type: type | None = None) -> None:
        self.block_type = block_type
        self._instances: list[Canonizer] = []

    def copy(self) -> _ResidualBlockCanonizer:
        return type(self)(self.block_type)

    def _part_type(self) -> type:
        if self.block_type is not None:
            return self.block_type
        return _torchvision_class(
            type(self).__name__, "block_type", "torchvision.models.resnet", self._torchvision_name
        )

    def _accepts(self, part: nn.Module, part_type: type) -> bool:
        # A subclass with its own forward computes something else; replacing it would be wrong.
        if type(part).forward is part_type.forward:
            return True
        warnings.warn(
            f"{type(self).__name__}: {type(part).__name__} overrides forward(), so it is left "
            "unchanged; pass block_type=... to canonize it",
            UserWarning,
            stacklevel=4,
        )
        return False

    def _canonize(self, part: nn.Module) -> list[Canonizer]:
        def route_addition_through_sum() -> list[Canonizer]:
            attributes = AttributeCanonizer()
            forward = types.MethodType(type(self)._forward, part)
            attributes.register(part, {"forward": forward, "canonizer_sum": Sum()})
            return [attributes]

        steps = [lambda: NamedMergeBatchNorm(list(self._conv_bn_pairs)).apply(part)]
        if part.downsample is not None:
            steps.append(lambda: SequentialMergeBatchNorm().apply(part.downsample))
        steps.append(route_addition_through_sum)
        return apply_all(steps)


class ResNetBasicBlockCanonizer(_ResidualBlockCanonizer):
    """Canonize torchvision ``BasicBlock``s (or ``block_type``): merge bn1/bn2 into conv1/conv2 and
    the downsample's batch norm, and compute ``out + identity`` with a ``Sum`` module."""

    _torchvision_name = "BasicBlock"
    _conv_bn_pairs = (("conv1", "bn1"), ("conv2", "bn2"))
    _forward = _basic_block_forward


class ResNetBottleneckCanonizer(_ResidualBlockCanonizer):
    """Canonize torchvision ``Bottleneck``s (or ``block_type``): merge bn1..bn3 into conv1..conv3
    and the downsample's batch norm, and compute ``out + identity`` with a ``Sum`` module."""

    _torchvision_name = "Bottleneck"
    _conv_bn_pairs = (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"))
    _forward = _bottleneck_forward


class _ResNetStemCanonizer(_PartCanonizer):
    """Merge the stem batch norm ``bn1`` of a ResNet into its first convolution ``conv1``."""

    def __init__(self, resnet_type: type | None = None) -> None:
        self.resnet_type = resnet_type
        self._instances: list[Canonizer] = []

    def copy(self) -> _ResNetStemCanonizer:
        return _ResNetStemCanonizer(self.resnet_type)

    def _part_type(self) -> type:
        if self.resnet_type is not None:
            return self.resnet_type
        return _torchvision_class(
            "ResNetCanonizer", "resnet_type", "torchvision.models.resnet", "ResNet"
        )

    def _canonize(self, part: nn.Module) -> list[Canonizer]:
        return NamedMergeBatchNorm([(("conv1",), "bn1")]).apply(part)


class ResNetCanonizer(CompositeCanonizer):
    """Canonize torchvision ResNets: merge every batch norm and route each residual addition through
    a ``Sum`` module, so that an LRP composite's ``Sum`` rule applies.

    Parameters
    ----------
    resnet_type, basic_block_type, bottleneck_type:
        Classes to match instead of torchvision's ``ResNet``, ``BasicBlock`` and ``Bottleneck``.
    """

    def __init__(
        self,
        resnet_type: type | None = None,
        basic_block_type: type | None = None,
        bottleneck_type: type | None = None,
    ) -> None:
        self.types = (resnet_type, basic_block_type, bottleneck_type)
        super().__init__(
            [
                _ResNetStemCanonizer(resnet_type),
                ResNetBasicBlockCanonizer(basic_block_type),
                ResNetBottleneckCanonizer(bottleneck_type),
            ]
        )

    def copy(self) -> ResNetCanonizer:
        return ResNetCanonizer(*self.types)


class VGGCanonizer(_PartCanonizer):
    """Canonize torchvision VGGs (or ``vgg_type``): merge each batch norm of the ``*_bn`` variants
    into the convolution before it (they are consecutive children of ``nn.Sequential``)."""

    def __init__(self, vgg_type: type | None = None) -> None:
        self.vgg_type = vgg_type
        self._instances: list[Canonizer] = []

    def copy(self) -> VGGCanonizer:
        return VGGCanonizer(self.vgg_type)

    def _part_type(self) -> type:
        if self.vgg_type is not None:
            return self.vgg_type
        return _torchvision_class("VGGCanonizer", "vgg_type", "torchvision.models.vgg", "VGG")

    def _canonize(self, part: nn.Module) -> list[Canonizer]:
        return SequentialMergeBatchNorm().apply(part)


__all__ = [
    "ResNetBasicBlockCanonizer",
    "ResNetBottleneckCanonizer",
    "ResNetCanonizer",
    "TorchvisionNotAvailableError",
    "VGGCanonizer",
]
