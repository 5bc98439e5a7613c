"""torchvision canonizers, tested on stand-ins with torchvision's structure and attribute names.

torchvision is not installed here, so the stand-in classes below re-create torchvision's
``BasicBlock``, ``Bottleneck``, ``ResNet`` and ``VGG`` layouts (same attribute names, same forward
computations) and are passed to the canonizers as the classes to match. Checked: the canonized model
gives the same output (1e-6 relative), removal restores the ``state_dict`` bit-identically, and LRP
relevance is conserved through a residual block (sum of input relevance = sum of output relevance).
"""

import subprocess
import sys
import warnings

import pytest
import torch
from torch import nn

from lrp_core.layer import Sum
from lrp_core.torchvision import (
    ResNetBasicBlockCanonizer,
    ResNetBottleneckCanonizer,
    ResNetCanonizer,
    TorchvisionNotAvailableError,
    VGGCanonizer,
)

from .model_state import assert_restored, randomize_batch_norms, relative_error, snapshot
from .model_state import tensor_objects as objects_of


class BasicBlock(nn.Module):
    """Stand-in for torchvision.models.resnet.BasicBlock."""

    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class Bottleneck(nn.Module):
    """Stand-in for torchvision.models.resnet.Bottleneck."""

    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    """Stand-in for a tiny torchvision.models.resnet.ResNet (stem, one block of each kind, head)."""

    def __init__(self, classes=5):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(2)
        self.layer1 = nn.Sequential(BasicBlock(8, 8))
        downsample = nn.Sequential(nn.Conv2d(8, 16, 1, 2, bias=False), nn.BatchNorm2d(16))
        self.layer2 = nn.Sequential(Bottleneck(8, 4, stride=2, downsample=downsample))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(16, classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class VGG(nn.Module):
    """Stand-in for a tiny torchvision.models.vgg.VGG with batch norm (the ``*_bn`` variants)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(4, 6, 3, padding=1),
            nn.BatchNorm2d(6),
            nn.ReLU(inplace=True),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((2, 2))
        self.classifier = nn.Sequential(
            nn.Linear(24, 8), nn.ReLU(True), nn.Dropout(), nn.Linear(8, 3)
        )

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def resnet_canonizer():
    return ResNetCanonizer(
        resnet_type=ResNet, basic_block_type=BasicBlock, bottleneck_type=Bottleneck
    )


def canonize_and_check(model, canonizer, x):
    """Apply, compare outputs (1e-6 relative), remove, compare state_dict; return the instances."""
    expected, before, objects = model(x), snapshot(model), objects_of(model)
    instances = canonizer.apply(model)
    assert relative_error(model(x), expected) <= 1e-6
    for instance in reversed(instances):
        instance.remove()
    assert_restored(model, before, objects)
    assert torch.equal(model(x), expected)
    return instances


def test_importing_lrp_core_torchvision_does_not_import_torchvision():
    code = "import sys, lrp_core.torchvision; assert 'torchvision' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    "canonizer",
    [ResNetCanonizer(), ResNetBasicBlockCanonizer(), ResNetBottleneckCanonizer(), VGGCanonizer()],
    ids=lambda canonizer: type(canonizer).__name__,
)
def test_missing_torchvision_raises_a_clear_import_error(canonizer, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # makes `import torchvision` fail
    model = randomize_batch_norms(ResNet())
    before = snapshot(model)
    with pytest.raises(
        TorchvisionNotAvailableError, match="needs torchvision.*install torchvision"
    ):
        canonizer.apply(model)
    assert isinstance(TorchvisionNotAvailableError(), ImportError)
    assert_restored(model, before, {})


def test_resnet_canonizer_keeps_output_and_restores_state_dict():
    torch.manual_seed(0)
    model = randomize_batch_norms(ResNet())
    x = torch.randn(2, 3, 8, 8)
    expected = model(x)
    instances = resnet_canonizer().apply(model)
    # every batch norm became the identity, every residual addition goes through a Sum
    names = dict(model.named_modules())
    assert isinstance(names["layer1.0.canonizer_sum"], Sum)
    assert isinstance(names["layer2.0.canonizer_sum"], Sum)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            # identity: mean 0, var + eps = 1 (eps stays positive), weight 1, bias 0
            assert module.eps > 0 and torch.equal(
                module.running_var + module.eps, torch.ones_like(module.running_var)
            )
            assert torch.equal(module.running_mean, torch.zeros_like(module.running_mean))
            assert torch.equal(module.weight, torch.ones_like(module.weight))
            assert torch.equal(module.bias, torch.zeros_like(module.bias))
    assert relative_error(model(x), expected) <= 1e-6
    for instance in reversed(instances):
        instance.remove()
    assert "canonizer_sum" not in dict(model.named_modules()) and all(
        "forward" not in vars(module) for module in model.modules()
    )
    canonize_and_check(model, resnet_canonizer(), x)
    canonize_and_check(model, resnet_canonizer().copy(), x)


@pytest.mark.parametrize(
    "make_block, canonizer",
    [
        (lambda: BasicBlock(4, 4), ResNetBasicBlockCanonizer(BasicBlock)),
        (
            lambda: BasicBlock(4, 6, 2, nn.Sequential(nn.Conv2d(4, 6, 1, 2), nn.BatchNorm2d(6))),
            ResNetBasicBlockCanonizer(BasicBlock),
        ),
        (lambda: Bottleneck(8, 2), ResNetBottleneckCanonizer(Bottleneck)),
    ],
    ids=["basic", "basic_downsample", "bottleneck"],
)
def test_block_canonizers_keep_output(make_block, canonizer):
    torch.manual_seed(1)
    block = randomize_batch_norms(make_block())
    x = torch.randn(2, block.conv1.in_channels, 6, 6)
    instances = canonize_and_check(block, canonizer, x)
    assert len(instances) == 1


def test_block_subclass_with_its_own_forward_is_left_alone():
    class Custom(BasicBlock):
        def forward(self, x):
            return super().forward(x) * 2

    model = nn.Sequential(Custom(2, 2), BasicBlock(2, 2)).eval()
    with pytest.warns(UserWarning, match="overrides forward"):
        instances = ResNetBasicBlockCanonizer(BasicBlock).apply(model)
    assert len(instances) == 1 and "forward" not in vars(model[0]) and "forward" in vars(model[1])
    instances[0].remove()


def test_vgg_canonizer_merges_feature_batch_norms():
    torch.manual_seed(2)
    model = randomize_batch_norms(VGG())
    x = torch.randn(2, 3, 8, 8)
    (instance,) = VGGCanonizer(vgg_type=VGG).apply(model)
    merged = [merge.batch_norm for merge in instance._instances]
    assert merged == [model.features[1], model.features[5]]
    instance.remove()
    canonize_and_check(model, VGGCanonizer(vgg_type=VGG), x)


def test_relevance_is_conserved_through_a_canonized_block():
    """EpsilonPlus on a bias-free net with canonized blocks: the sum of the input relevance equals
    the sum of the output relevance (the seed), to 1e-6 in float64. Bias-free means the batch
    norms have zero running mean and zero shift, so the merged convolutions have zero bias."""
    composites = pytest.importorskip("lrp_core.composites")
    torch.manual_seed(3)
    downsample = nn.Sequential(nn.Conv2d(4, 6, 1, 2, bias=False), nn.BatchNorm2d(6))
    model = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1, bias=False),
        nn.ReLU(),
        BasicBlock(4, 6, 2, downsample),
        Bottleneck(6, 2, 1, nn.Sequential(nn.Conv2d(6, 8, 1, bias=False), nn.BatchNorm2d(8))),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 3, bias=False),
    )
    randomize_batch_norms(model)
    basic, bottleneck = model[2], model[3]
    into_sum = [
        (basic.conv2, basic.bn2),
        (bottleneck.conv3, bottleneck.bn3),
        (basic.downsample[0], basic.downsample[1]),
        (bottleneck.downsample[0], bottleneck.downsample[1]),
    ]
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.zero_()
                module.bias.zero_()
        # ZPlus loses relevance where z+ = 0 but the output is not (only negative contributions);
        # behind a ReLU such outputs get no relevance, but the summands of the residual addition
        # do, so the layers feeding the Sum get non-negative merged weights.
        for conv, batch_norm in into_sum:
            conv.weight.abs_()
            batch_norm.weight.abs_()
    model = model.double()
    before, objects = snapshot(model), objects_of(model)
    x = torch.randn(2, 2, 8, 8, dtype=torch.float64, requires_grad=True)
    expected = model(x).detach()
    canonizers = [
        ResNetBasicBlockCanonizer(BasicBlock),
        ResNetBottleneckCanonizer(Bottleneck),
    ]
    composite = composites.EpsilonPlus(epsilon=1e-12, stabilizer=1e-12, canonizers=canonizers)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing may fall back to the plain gradient here
        with composite.context(model) as modified:
            output = modified(x)
            seed = torch.eye(3, dtype=torch.float64)[output.argmax(dim=1)] * output
            (relevance,) = torch.autograd.grad(output, x, seed)
    torch.testing.assert_close(output.detach(), expected, rtol=1e-10, atol=1e-12)
    relevance_total = relevance.sum(dim=(1, 2, 3))
    torch.testing.assert_close(relevance_total, seed.sum(dim=1), rtol=1e-6, atol=0)
    assert_restored(model, before, objects)
