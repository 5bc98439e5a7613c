"""Type groups of torch layers, usable with ``isinstance`` and in composite layer maps.

A type group is an abstract marker class that counts every class listed in its ``__subclass__``
tuple (and their subclasses) as its own subclass, so ``isinstance(nn.Conv2d(1, 1, 3), Convolution)``
is True although ``nn.Conv2d`` does not inherit from it. Groups may list other groups.
"""

from __future__ import annotations

from torch import nn


class SubclassMeta(type):
    """Metaclass of type groups: a group is a virtual superclass of its ``__subclass__`` classes."""

    __subclass__: tuple[type, ...] = ()

    def __instancecheck__(cls, instance: object) -> bool:
        return any(isinstance(instance, member) for member in cls.__subclass__)

    def __subclasscheck__(cls, subclass: type) -> bool:
        if type.__subclasscheck__(cls, subclass):
            return True
        return any(issubclass(subclass, member) for member in cls.__subclass__)


class Dense(metaclass=SubclassMeta):
    """Fully connected layers: ``nn.Linear`` (and ``nn.LazyLinear``)."""

    __subclass__ = (nn.Linear,)


class ConvolutionStandard(metaclass=SubclassMeta):
    """Forward convolutions: ``nn.Conv1d``, ``nn.Conv2d``, ``nn.Conv3d``."""

    __subclass__ = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


class ConvolutionTranspose(metaclass=SubclassMeta):
    """Transposed convolutions: ``nn.ConvTranspose1d``, ``2d`` and ``3d``."""

    __subclass__ = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


class Convolution(metaclass=SubclassMeta):
    """All convolutions, forward and transposed."""

    __subclass__ = (ConvolutionStandard, ConvolutionTranspose)


class Linear(metaclass=SubclassMeta):
    """All linear-type layers (affine in their input): dense layers and convolutions."""

    __subclass__ = (Dense, Convolution)


class BatchNorm(metaclass=SubclassMeta):
    """Batch normalisation layers: ``nn.BatchNorm1d/2d/3d`` and ``nn.SyncBatchNorm``."""

    __subclass__ = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


class AvgPool(metaclass=SubclassMeta):
    """Average pooling layers, fixed and adaptive, in 1, 2 and 3 dimensions."""

    __subclass__ = (
        nn.AvgPool1d,
        nn.AvgPool2d,
        nn.AvgPool3d,
        nn.AdaptiveAvgPool1d,
        nn.AdaptiveAvgPool2d,
        nn.AdaptiveAvgPool3d,
    )


class MaxPool(metaclass=SubclassMeta):
    """Max pooling layers, fixed and adaptive, in 1, 2 and 3 dimensions."""

    __subclass__ = (
        nn.MaxPool1d,
        nn.MaxPool2d,
        nn.MaxPool3d,
        nn.AdaptiveMaxPool1d,
        nn.AdaptiveMaxPool2d,
        nn.AdaptiveMaxPool3d,
    )


class Activation(metaclass=SubclassMeta):
    """Element-wise activation layers (output shaped like the input, so relevance can pass).

    Shape-changing modules of ``torch.nn.modules.activation`` (``nn.GLU``,
    ``nn.MultiheadAttention``) are not activations in this sense and are excluded, and so are the
    normalisations across units ``nn.Softmax``, ``nn.Softmin``, ``nn.Softmax2d`` and
    ``nn.LogSoftmax``, which keep their plain gradient as in the reference library.
    """

    __subclass__ = (
        nn.CELU,
        nn.ELU,
        nn.GELU,
        nn.Hardshrink,
        nn.Hardsigmoid,
        nn.Hardswish,
        nn.Hardtanh,
        nn.LeakyReLU,
        nn.LogSigmoid,
        nn.Mish,
        nn.PReLU,
        nn.ReLU,
        nn.ReLU6,
        nn.RReLU,
        nn.SELU,
        nn.SiLU,
        nn.Sigmoid,
        nn.Softplus,
        nn.Softshrink,
        nn.Softsign,
        nn.Tanh,
        nn.Tanhshrink,
        nn.Threshold,
    )


__all__ = [
    "Activation",
    "AvgPool",
    "BatchNorm",
    "Convolution",
    "ConvolutionStandard",
    "ConvolutionTranspose",
    "Dense",
    "Linear",
    "MaxPool",
    "SubclassMeta",
]
