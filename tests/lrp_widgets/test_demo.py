"""Tests of the demo dataset, model, shipped weights and canonizers (lrp_widgets.demo)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from lrp_widgets import demo
from lrp_widgets.demo import (
    CLASSES,
    INPUT_HIGH,
    INPUT_LOW,
    build_model,
    load_model,
    make_batch,
    to_display_image,
)
from lrp_widgets.demo.data import PIXEL_NOISE, generate
from lrp_widgets.demo.model import ResidualBlock
from lrp_widgets.demo.train import TRAIN_SEED_BASE, VALIDATION_SEED, accuracy, train

# A seed the training script never draws: it uses TRAIN_SEED_BASE + step and VALIDATION_SEED.
TEST_SEED = 7
SIZE = 64


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return make_batch(200, seed=TEST_SEED)


@pytest.fixture(scope="module")
def model() -> nn.Module:
    return load_model()


# -- data ---------------------------------------------------------------------------------------


def test_same_seed_gives_identical_batches():
    first, second = make_batch(12, seed=5), make_batch(12, seed=5)
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)


def test_different_seeds_give_different_images():
    images_a, _, masks_a = make_batch(12, seed=5)
    images_b, _, masks_b = make_batch(12, seed=6)
    assert not torch.equal(images_a, images_b)
    assert not torch.equal(masks_a, masks_b)


def test_generation_leaves_global_random_state_alone():
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()
    make_batch(4, seed=1)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert all(
        np.array_equal(a, b) for a, b in zip(np.random.get_state(), numpy_state, strict=True)
    )


def test_shapes_dtypes_and_ranges(batch):
    images, labels, masks = batch
    n = labels.shape[0]
    assert images.shape == (n, 3, SIZE, SIZE) and images.dtype == torch.float32
    assert labels.shape == (n,) and labels.dtype == torch.int64
    assert masks.shape == (n, SIZE, SIZE) and masks.dtype == torch.bool
    assert images.min() >= INPUT_LOW and images.max() <= INPUT_HIGH
    assert labels.min() >= 0 and labels.max() < len(CLASSES)
    # The documented normalisation: images = 2 * rgb - 1 with rgb the generator's [0, 1] output.
    rgb, _, _ = generate(n, TEST_SEED)
    torch.testing.assert_close(images, torch.from_numpy(2.0 * rgb - 1.0), rtol=0, atol=1e-6)


@pytest.mark.parametrize("n", [0, 1, 7, 100])
def test_classes_are_balanced(n):
    # Each class occurs floor(n / k) or ceil(n / k) times.
    _, labels, _ = make_batch(n, seed=3)
    counts = torch.bincount(labels, minlength=len(CLASSES))
    assert counts.sum() == n
    assert counts.max() - counts.min() <= 1


def test_masks_are_non_empty_and_inside_the_image(batch):
    _, _, masks = batch
    area = masks.sum(dim=(1, 2))
    assert (area >= 50).all()  # the smallest shape (a triangle of radius 9 px) covers ~100 px
    border = masks[:, 0, :] | masks[:, -1, :] | masks[:, :, 0] | masks[:, :, -1]
    assert not border.any()


def test_masks_are_exactly_the_pixels_of_the_shape_colour(batch):
    # The shape is painted in one colour c (plus pixel noise of std PIXEL_NOISE per channel) and
    # every background channel stays >= 0.06 away from c, so thresholding the distance to c
    # (taken as the median colour under the mask) recovers the mask: IoU close to 1.
    images, _, masks = batch
    rgb = (images.numpy() + 1.0) / 2.0
    for image, mask in zip(rgb, masks.numpy(), strict=True):
        colour = np.median(image[:, mask], axis=1)
        distance = np.sqrt(((image - colour[:, None, None]) ** 2).sum(axis=0))
        painted = distance < 5 * PIXEL_NOISE
        iou = (painted & mask).sum() / (painted | mask).sum()
        assert iou >= 0.97
        # Shape pixels are near-uniform, unlike the textured background.
        assert image[:, mask].std(axis=1).max() < 2 * PIXEL_NOISE
        assert image[:, ~mask].std(axis=1).max() > image[:, mask].std(axis=1).max()


def test_mask_geometry_matches_the_label(batch):
    # Fill ratio = area / (pi * d^2), d = largest distance of a mask pixel from the mask's centroid.
    # Continuous values: circle 1, square 2/pi = 0.64, cross 0.62, ring 1 - (0.5/0.95)^2 = 0.72,
    # triangle 3*sqrt(3)/(4*pi) = 0.41. A ring's centroid is in its hole; the others contain it.
    _, labels, masks = batch
    ys, xs = np.mgrid[0:SIZE, 0:SIZE]
    for label, mask in zip(labels.tolist(), masks.numpy(), strict=True):
        area = mask.sum()
        cy, cx = (ys * mask).sum() / area, (xs * mask).sum() / area
        d2 = ((ys - cy) ** 2 + (xs - cx) ** 2)[mask].max()
        fill = area / (np.pi * d2)
        shape = CLASSES[label]
        if shape == "circle":
            assert fill > 0.9
        elif shape == "triangle":
            assert fill < 0.56
        else:
            assert 0.58 < fill < 0.8, shape
        assert mask[int(round(cy)), int(round(cx))] == (shape != "ring")


@pytest.mark.parametrize(
    ("n", "seed", "error"),
    [(-1, 0, ValueError), (3, -2, ValueError), (2.5, 0, TypeError), (True, 0, TypeError),
     (3, "a", TypeError)],
)  # fmt: skip
def test_bad_arguments_raise_clear_errors(n, seed, error):
    with pytest.raises(error, match="n|seed"):
        make_batch(n, seed)


def test_to_display_image_undoes_the_normalisation(batch):
    images = batch[0][:5]
    pixels = to_display_image(images)
    assert pixels.dtype == np.uint8 and pixels.shape == (5, SIZE, SIZE, 3)
    rgb, _, _ = generate(len(batch[0]), TEST_SEED)  # the same images, straight from the generator
    expected = np.moveaxis(rgb[:5], 1, -1) * 255.0
    assert np.abs(pixels.astype(np.float64) - expected).max() <= 0.5 + 1e-3
    assert to_display_image(images[0]).shape == (SIZE, SIZE, 3)
    with pytest.raises(ValueError, match="shape"):
        to_display_image(images[:, :2])


# -- model and weights --------------------------------------------------------------------------


def test_architecture_has_the_structures_of_real_models():
    net = build_model()
    names = dict(net.named_modules())
    for name in ("features.0", "features.1", "block", "block.conv1", "block.bn2", "classifier"):
        assert name in names
    kinds = {type(module) for module in net.modules()}
    for kind in (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d, nn.AdaptiveAvgPool2d):
        assert kind in kinds
    assert isinstance(names["block"], ResidualBlock)
    assert net(torch.zeros(2, 3, SIZE, SIZE)).shape == (2, len(CLASSES))


def test_weights_file_is_small():
    weights = Path(demo.__file__).with_name(demo.WEIGHTS_FILE)
    assert weights.stat().st_size < 2 * 1024 * 1024


def test_load_model_is_trained_float32_cpu_and_in_eval_mode(model):
    assert not any(module.training for module in model.modules())
    for tensor in model.state_dict().values():
        assert tensor.device.type == "cpu"
        assert tensor.dtype == torch.float32 or not tensor.is_floating_point()
    # Loaded, not freshly initialised: BatchNorm running statistics differ from their defaults.
    assert not torch.equal(model.features[1].running_var, torch.ones(16))


def test_missing_weights_say_how_to_recreate_them(monkeypatch):
    monkeypatch.setattr(demo, "WEIGHTS_FILE", "no-such-weights.pt")
    with pytest.raises(FileNotFoundError, match="lrp_widgets.demo.train"):
        load_model()


def test_test_set_accuracy_is_at_least_95_percent(model):
    assert TEST_SEED != VALIDATION_SEED and TEST_SEED < TRAIN_SEED_BASE
    assert accuracy(model, 500, TEST_SEED) >= 0.95


def test_training_is_reproducible():
    # Same seeds and thread count => bit-identical weights (checked on a few steps).
    threads, rng_state = torch.get_num_threads(), torch.get_rng_state()
    try:
        first, second = train(steps=2, log_every=10), train(steps=2, log_every=10)
    finally:
        torch.set_num_threads(threads)
        torch.set_rng_state(rng_state)
    for key, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[key]), key


def test_importing_demo_pulls_in_no_widget_code_or_torchvision():
    code = (
        "import sys, lrp_widgets.demo\n"
        "names = ('anywidget', 'ipywidgets', 'torchvision', 'zennit')\n"
        "bad = [name for name in names if name in sys.modules]\n"
        "assert not bad, bad\n"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)


# -- canonizers ---------------------------------------------------------------------------------


def test_canonizers_keep_the_output_and_restore_the_model(batch):
    pytest.importorskip("lrp_core.canonizers")
    model = load_model()
    images = batch[0][:32]
    state = {key: value.clone() for key, value in model.state_dict().items()}
    with torch.no_grad():
        expected = model(images)
    instances = [inst for canonizer in demo.demo_canonizers() for inst in canonizer.apply(model)]
    try:
        names = dict(model.named_modules())
        # The residual addition runs through a Sum module set on this instance only.
        assert type(names["block.canonizer_sum"]).__name__ == "Sum"
        assert "forward" in vars(model.block)
        # Every batch norm is an identity map now: merged into its convolution.
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                x = torch.randn(2, module.num_features, 3, 3)
                torch.testing.assert_close(module(x), x, rtol=1e-6, atol=1e-6)
        with torch.no_grad():
            output = model(images)
        relative = (output - expected).abs().max() / expected.abs().max()
        assert relative <= 1e-6
    finally:
        for instance in reversed(instances):
            instance.remove()
    assert "forward" not in vars(model.block)
    assert "block.canonizer_sum" not in dict(model.named_modules())
    assert ResidualBlock.forward.__qualname__ == "ResidualBlock.forward"
    restored = model.state_dict()
    assert restored.keys() == state.keys()
    for key, value in state.items():
        assert torch.equal(restored[key], value), key
    assert all(module.bias is None for module in model.modules() if isinstance(module, nn.Conv2d))


def test_canonizers_make_lrp_conserve_through_the_residual_block():
    # LRP conservation: with bias-free layers (zero BatchNorm shifts and running means, no
    # classifier bias), the relevance reaching the input sums to the relevance put on the output
    # (here a one-hot target, so 1). Without the canonizers the block's plain `out + identity`
    # passes the full relevance to both summands, so the sum comes out near 2.
    pytest.importorskip("lrp_core.composites")
    from lrp_core.attribution import Gradient
    from lrp_core.composites import EpsilonPlusFlat

    torch.manual_seed(0)
    model = build_model().double().eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 2.0)
                module.running_var.uniform_(0.5, 2.0)
        model.classifier.bias.zero_()
    images, labels, _ = make_batch(4, seed=TEST_SEED)
    target = nn.functional.one_hot(labels, len(CLASSES)).double()

    totals = {}
    for name, canonizers in (("with", demo.demo_canonizers()), ("without", None)):
        with Gradient(model, EpsilonPlusFlat(epsilon=1e-12, canonizers=canonizers)) as attributor:
            _, relevance = attributor(images.double(), target)
        totals[name] = relevance.sum(dim=(1, 2, 3))
    torch.testing.assert_close(
        totals["with"], torch.ones(4, dtype=torch.float64), rtol=0, atol=1e-3
    )
    assert (totals["without"] > 1.5).all()
