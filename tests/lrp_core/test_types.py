"""Type groups: ``isinstance(layer, Group)`` is True exactly for the torch classes a group lists."""

import pytest
from torch import nn

from lrp_core import types
from lrp_core.layer import Sum

DENSE = [nn.Linear(2, 3)]
CONV_STANDARD = [nn.Conv1d(1, 1, 1), nn.Conv2d(1, 1, 1), nn.Conv3d(1, 1, 1)]
CONV_TRANSPOSE = [
    nn.ConvTranspose1d(1, 1, 1),
    nn.ConvTranspose2d(1, 1, 1),
    nn.ConvTranspose3d(1, 1, 1),
]
BATCH_NORM = [nn.BatchNorm1d(2), nn.BatchNorm2d(2), nn.BatchNorm3d(2)]
AVG_POOL = [
    nn.AvgPool1d(2),
    nn.AvgPool2d(2),
    nn.AvgPool3d(2),
    nn.AdaptiveAvgPool1d(1),
    nn.AdaptiveAvgPool2d(1),
    nn.AdaptiveAvgPool3d(1),
]
MAX_POOL = [
    nn.MaxPool1d(2),
    nn.MaxPool2d(2),
    nn.MaxPool3d(2),
    nn.AdaptiveMaxPool1d(1),
    nn.AdaptiveMaxPool2d(1),
    nn.AdaptiveMaxPool3d(1),
]
ACTIVATION = [
    nn.ReLU(),
    nn.LeakyReLU(),
    nn.ELU(),
    nn.GELU(),
    nn.SiLU(),
    nn.Sigmoid(),
    nn.Tanh(),
    nn.Softplus(),
    nn.ReLU6(),
    nn.PReLU(),
    nn.Hardswish(),
    nn.Mish(),
]
# softmax-type normalisations are no activations (they keep the plain gradient, as in the
# reference library)
OTHERS = [nn.Identity(), nn.Flatten(), nn.Dropout(), nn.Sequential(), Sum(), nn.Embedding(3, 2)]
OTHERS += [nn.Softmax(dim=1), nn.LogSoftmax(dim=1), nn.Softmin(dim=1), nn.Softmax2d()]

ALL = (
    DENSE + CONV_STANDARD + CONV_TRANSPOSE + BATCH_NORM + AVG_POOL + MAX_POOL + ACTIVATION + OTHERS
)

# group -> the instances that must be members; every other instance of ALL must not be
MEMBERS = {
    types.Dense: DENSE,
    types.ConvolutionStandard: CONV_STANDARD,
    types.ConvolutionTranspose: CONV_TRANSPOSE,
    types.Convolution: CONV_STANDARD + CONV_TRANSPOSE,
    types.Linear: DENSE + CONV_STANDARD + CONV_TRANSPOSE,
    types.BatchNorm: BATCH_NORM,
    types.AvgPool: AVG_POOL,
    types.MaxPool: MAX_POOL,
    types.Activation: ACTIVATION,
}


@pytest.mark.parametrize("group", list(MEMBERS), ids=lambda group: group.__name__)
def test_isinstance_exactly_the_listed_classes(group):
    members = {id(module) for module in MEMBERS[group]}
    for module in ALL:
        expected = id(module) in members
        assert isinstance(module, group) is expected, (group.__name__, type(module).__name__)
        assert issubclass(type(module), group) is expected


def test_groups_nest_and_work_in_tuples():
    assert issubclass(types.Dense, types.Linear)
    assert issubclass(types.ConvolutionTranspose, types.Convolution)
    assert not issubclass(types.BatchNorm, types.Linear)
    assert isinstance(nn.Conv2d(1, 1, 1), (types.BatchNorm, types.Convolution))
    assert not isinstance(nn.ReLU(), (types.BatchNorm, types.Convolution))


def test_subclasses_of_torch_layers_are_members():
    class MyConv(nn.Conv2d):
        pass

    assert isinstance(MyConv(1, 1, 1), types.ConvolutionStandard)
    assert isinstance(nn.LazyLinear(3), types.Dense)


def test_shape_changing_activation_modules_are_not_activations():
    assert not isinstance(nn.GLU(), types.Activation)
    assert not isinstance(nn.MultiheadAttention(4, 1), types.Activation)
