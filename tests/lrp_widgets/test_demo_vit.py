"""Tests of the vision-transformer demo: architecture, shipped weights, attribution on it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from lrp_widgets import demo
from lrp_widgets.demo import CLASSES, build_vit_model, load_vit_model, make_batch
from lrp_widgets.demo.train_transformers import (
    TRAIN_SEED_BASE,
    VALIDATION_SEED,
    train_vit,
    vit_accuracy,
)
from lrp_widgets.demo.transformer import SelfAttention, TransformerBlock

# A seed the training script never draws: it uses TRAIN_SEED_BASE + step and VALIDATION_SEED.
TEST_SEED = 7
SIZE = 64


@pytest.fixture(scope="module")
def model() -> nn.Module:
    return load_vit_model()


class _CallRecorder(TorchFunctionMode):
    """Records every torch function called during a forward pass."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[object] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.calls.append(func)
        return func(*args, **(kwargs or {}))


def test_architecture_is_a_pre_norm_vit_with_explicit_attention():
    net = build_vit_model()
    names = dict(net.named_modules())
    depth = len(net.blocks)
    assert depth >= 2
    for name in ("blocks.0.norm1", "blocks.0.attention.query", "blocks.0.mlp.fc1", "norm", "head"):
        assert name in names
    assert isinstance(names["blocks.0"], TransformerBlock)
    assert isinstance(names["blocks.0.attention"], SelfAttention)
    assert any(isinstance(module, nn.Conv2d) for module in net.patch_embedding.modules())
    assert {nn.LayerNorm, nn.GELU, nn.Linear} <= {type(module) for module in net.modules()}
    # Attention is two torch.matmul calls around one softmax per block, visible to a
    # TorchFunctionMode (what the engine's functional capture uses).
    recorder = _CallRecorder()
    with recorder:
        logits = net(torch.zeros(2, 3, SIZE, SIZE))
    assert logits.shape == (2, len(CLASSES))
    assert recorder.calls.count(torch.matmul) == 2 * depth
    assert recorder.calls.count(nn.functional.softmax) == depth


def test_weights_file_is_small():
    weights = Path(demo.__file__).with_name(demo.VIT_WEIGHTS_FILE)
    assert weights.stat().st_size < 2 * 1024 * 1024


def test_load_vit_model_is_trained_float32_cpu_and_in_eval_mode(model):
    assert not any(module.training for module in model.modules())
    for tensor in model.state_dict().values():
        assert tensor.device.type == "cpu" and tensor.dtype == torch.float32
    assert not torch.equal(model.head.weight, build_vit_model().head.weight)


def test_missing_weights_say_how_to_recreate_them(monkeypatch):
    monkeypatch.setattr(demo, "VIT_WEIGHTS_FILE", "no-such-weights.pt")
    with pytest.raises(FileNotFoundError, match="lrp_widgets.demo.train_transformers"):
        load_vit_model()


def test_test_set_accuracy_is_at_least_95_percent(model):
    assert TEST_SEED != VALIDATION_SEED and TEST_SEED < TRAIN_SEED_BASE
    assert vit_accuracy(model, 500, TEST_SEED) >= 0.95


def test_bad_image_shape_raises_a_clear_error(model):
    with pytest.raises(ValueError, match="images must have shape"):
        model(torch.zeros(2, 3, 32, 32))
    with pytest.raises(ValueError, match="images must have shape"):
        model(torch.zeros(3, SIZE, SIZE))


def test_gradient_times_input_runs_through_the_attributor(model):
    # Gradient x input, R = x * d f_y / d x, against a float64 autograd reference.
    from lrp_core.attribution import Gradient

    images, labels, _ = make_batch(16, seed=TEST_SEED)
    target = nn.functional.one_hot(labels, len(CLASSES)).float()
    with Gradient(model) as attributor:
        output, gradient = attributor(images, target)
    assert output.shape == (16, len(CLASSES)) and gradient.shape == images.shape

    reference_model = load_vit_model().double()
    reference_input = images.double().requires_grad_(True)
    logits = reference_model(reference_input)
    (reference,) = torch.autograd.grad(logits.gather(1, labels[:, None]).sum(), reference_input)
    torch.testing.assert_close(gradient.double(), reference, rtol=1e-3, atol=1e-6)
    # The model left as it was: no hooks, same output.
    with torch.no_grad():
        torch.testing.assert_close(model(images), output)


def test_training_is_reproducible():
    threads, rng_state = torch.get_num_threads(), torch.get_rng_state()
    try:
        first, second = train_vit(steps=2, log_every=10), train_vit(steps=2, log_every=10)
    finally:
        torch.set_num_threads(threads)
        torch.set_rng_state(rng_state)
    for key, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[key]), key
