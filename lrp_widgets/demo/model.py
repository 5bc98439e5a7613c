"""The demo CNN: a small network with the structures users meet in real models.

Layout (qualified module names as they appear in ``named_modules()``)::

    features.0-3  Conv2d(3, 16, 3)   BatchNorm2d  ReLU  MaxPool2d(2)
    features.4-7  Conv2d(16, 32, 3)  BatchNorm2d  ReLU  MaxPool2d(2)
    block         ResidualBlock(32): conv1 bn1 relu1 conv2 bn2, ``out + identity``, relu2
    head.0-3      Conv2d(32, 64, 3)  BatchNorm2d  ReLU  MaxPool2d(2)
    pool          AdaptiveAvgPool2d(1)
    flatten       Flatten
    classifier    Linear(64, n_classes)

The residual addition is a plain ``out + identity`` in :meth:`ResidualBlock.forward`, so LRP
only conserves relevance through it once a canonizer routes the sum through a module
(see :mod:`lrp_widgets.demo.canonizers`).
"""

from __future__ import annotations

import torch
from torch import nn


def _conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    ]


class ResidualBlock(nn.Module):
    """Two Conv+BatchNorm layers with an identity shortcut: ``relu2(bn2(conv2(...)) + x)``.

    Parameters
    ----------
    channels
        number of input and output channels.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + identity)


class ShapeNet(nn.Module):
    """Small CNN classifying 64×64 RGB shape images (see the module docstring for its layout).

    Parameters
    ----------
    n_classes
        number of output logits.
    """

    def __init__(self, n_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            *_conv_bn_relu(3, 16),
            nn.MaxPool2d(2),
            *_conv_bn_relu(16, 32),
            nn.MaxPool2d(2),
        )
        self.block = ResidualBlock(32)
        self.head = nn.Sequential(*_conv_bn_relu(32, 64), nn.MaxPool2d(2))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(64, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.block(self.features(x)))
        return self.classifier(self.flatten(self.pool(x)))
