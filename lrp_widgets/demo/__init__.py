"""The demo: generated data sets with ground truth and small trained models, shipped offline.

>>> from lrp_widgets.demo import load_model, make_batch
>>> model = load_model()
>>> images, labels, masks = make_batch(8, seed=1)
>>> predictions = model(images).argmax(dim=1)

The same shapes through a vision transformer, and a text transformer on generated review
snippets whose evidence tokens are known:

>>> vit = load_vit_model()
>>> text_model, tokenizer = load_text_model(), TOKENIZER
>>> ids, labels, evidence = make_text_batch(8, seed=1)
>>> predictions = text_model(ids).argmax(dim=1)  # or text_model(text_model.embed(ids))

Images are normalised to ``[INPUT_LOW, INPUT_HIGH] = [-1, 1]`` (``2 * rgb - 1``); these are the
bounds to give a box rule (ZBox) on the first layer. This package imports torch and numpy only:
no widget code, no torchvision.
"""

from __future__ import annotations

from importlib import resources

import numpy as np
import torch
from torch import nn

from lrp_core.live import register_canonizers

from .canonizers import demo_canonizers
from .data import IMAGE_SIZE, SHAPES, generate
from .model import ResidualBlock, ShapeNet
from .text import TEXT_CLASSES, VOCABULARY, WordTokenizer, generate_text
from .transformer import TextTransformer, VisionTransformer

__all__ = [
    "CLASSES",
    "IMAGE_SIZE",
    "INPUT_HIGH",
    "INPUT_LOW",
    "ResidualBlock",
    "ShapeNet",
    "TEXT_CLASSES",
    "TOKENIZER",
    "TextTransformer",
    "VisionTransformer",
    "WordTokenizer",
    "build_model",
    "build_text_model",
    "build_vit_model",
    "demo_canonizers",
    "load_model",
    "load_text_model",
    "load_vit_model",
    "make_batch",
    "make_text_batch",
    "to_display_image",
]

CLASSES: tuple[str, ...] = SHAPES
register_canonizers("demo", demo_canonizers)  # so configs and to_code() name them
INPUT_LOW = -1.0
INPUT_HIGH = 1.0
WEIGHTS_FILE = "weights.pt"
VIT_WEIGHTS_FILE = "vit_weights.pt"
TEXT_WEIGHTS_FILE = "text_weights.pt"
TOKENIZER = WordTokenizer(VOCABULARY)
# Sizes of the demo transformers (see transformer.py); the shipped weights match these.
VIT_CONFIG: dict[str, int] = {
    "patch_size": 8,
    "dim": 48,
    "depth": 3,
    "heads": 4,
    "mlp_dim": 96,
    "stem_channels": 16,
}
TEXT_CONFIG: dict[str, int] = {"max_length": 32, "dim": 32, "depth": 2, "heads": 2, "mlp_dim": 64}


def make_batch(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Generate ``n`` demo images with their labels and ground-truth masks.

    The same ``(n, seed)`` always gives the same batch (a smaller ``n`` with the same seed gives
    other images, not a prefix). Training draws seeds from ``train.TRAIN_SEED_BASE`` (1 000 000)
    upwards and validates on 999 999, so seeds below that give images the model never saw.

    Parameters
    ----------
    n
        number of images (``>= 0``).
    seed
        non-negative integer seed.

    Returns
    -------
        ``(images, labels, masks)``: ``images`` float32 ``[n, 3, 64, 64]`` normalised to
        ``[-1, 1]`` as the model expects, ``labels`` int64 ``[n]`` indexing :data:`CLASSES`,
        ``masks`` bool ``[n, 64, 64]``, true on the shape's pixels.

    Raises
    ------
    TypeError
        if ``n`` or ``seed`` is not an integer.
    ValueError
        if ``n`` or ``seed`` is negative.
    """
    rgb, labels, masks = generate(n, seed)
    images = torch.from_numpy(rgb).mul_(INPUT_HIGH - INPUT_LOW).add_(INPUT_LOW)
    return images, torch.from_numpy(labels), torch.from_numpy(masks)


def to_display_image(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """Undo the input normalisation for display: ``[..., 3, H, W]`` in ``[-1, 1]`` to uint8 RGB.

    Parameters
    ----------
    images
        one image ``[3, H, W]`` or a batch ``[n, 3, H, W]``, tensor or array.

    Returns
    -------
        uint8 array ``[H, W, 3]`` or ``[n, H, W, 3]`` (channels last, values ``0..255``).

    Raises
    ------
    ValueError
        if the input does not have 3 or 4 dimensions with 3 channels at ``dim -3``.
    """
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    images = np.asarray(images, dtype=np.float32)
    if images.ndim not in (3, 4) or images.shape[-3] != 3:
        raise ValueError(
            f"expected images of shape [3, H, W] or [n, 3, H, W], got {list(images.shape)}; "
            "pass the tensor returned by make_batch (or one image of it)"
        )
    unit = (images - INPUT_LOW) / (INPUT_HIGH - INPUT_LOW)
    pixels = np.rint(np.clip(unit, 0.0, 1.0) * 255.0).astype(np.uint8)
    return np.moveaxis(pixels, -3, -1)


def build_model() -> nn.Module:
    """The untrained demo architecture (:class:`ShapeNet` with one logit per class)."""
    return ShapeNet(len(CLASSES))


def _load_weights(model: nn.Module, file_name: str, script: str) -> nn.Module:
    """Load the shipped ``file_name`` into ``model``; float32, CPU, eval mode."""
    weights = resources.files(__package__).joinpath(file_name)
    if not weights.is_file():
        raise FileNotFoundError(
            f"the demo weights {file_name!r} are missing from {__package__}; "
            f"recreate them with `python -m lrp_widgets.demo.{script}`"
        )
    with resources.as_file(weights) as path:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state_dict)
    return model.float().eval()


def load_model() -> nn.Module:
    """The trained demo model: shipped weights, float32, on the CPU, in eval mode.

    Raises
    ------
    FileNotFoundError
        if the weights file is missing from the installed package.
    """
    return _load_weights(build_model(), WEIGHTS_FILE, "train")


def make_text_batch(
    n: int, seed: int = 0, length: int = 16
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Generate ``n`` token sequences with their labels and ground-truth evidence masks.

    Training draws seeds from ``train_transformers.TRAIN_SEED_BASE`` (2 000 000) upwards and
    validates on 999 999, so smaller seeds give sequences the text model never saw.

    Parameters
    ----------
    n : int
        Number of sequences (``>= 0``).
    seed : int
        Non-negative integer seed.
    length : int
        Tokens per sequence (3 to ``build_text_model().max_length`` = 32; the model was trained
        on 8 to 24).

    Returns
    -------
    tuple of torch.Tensor
        ``(ids, labels, evidence)``: ``ids`` int64 ``[n, length]`` (decode them with
        :data:`TOKENIZER`), ``labels`` int64 ``[n]`` indexing :data:`TEXT_CLASSES`, ``evidence``
        bool ``[n, length]``, true on the tokens that decide the label.

    Raises
    ------
    TypeError
        If ``n``, ``seed`` or ``length`` is not an integer.
    ValueError
        If ``n`` or ``seed`` is negative or ``length`` is below 3.
    """
    ids, labels, evidence = generate_text(n, seed, length)
    return torch.from_numpy(ids), torch.from_numpy(labels), torch.from_numpy(evidence)


def build_vit_model() -> VisionTransformer:
    """The untrained demo vision transformer (one logit per shape class)."""
    return VisionTransformer(len(CLASSES), image_size=IMAGE_SIZE, **VIT_CONFIG)


def build_text_model() -> TextTransformer:
    """The untrained demo text transformer (one logit per class of :data:`TEXT_CLASSES`)."""
    return TextTransformer(len(VOCABULARY), len(TEXT_CLASSES), **TEXT_CONFIG)


def load_vit_model() -> VisionTransformer:
    """The trained demo vision transformer: shipped weights, float32, CPU, eval mode.

    It takes the images of :func:`make_batch` (``[n, 3, 64, 64]`` in ``[-1, 1]``).

    Raises
    ------
    FileNotFoundError
        If the weights file is missing from the installed package.
    """
    return _load_weights(build_vit_model(), VIT_WEIGHTS_FILE, "train_transformers")


def load_text_model() -> TextTransformer:
    """The trained demo text transformer: shipped weights, float32, CPU, eval mode.

    It takes token ids ``[n, length]`` or their embeddings ``model.embed(ids)``.

    Raises
    ------
    FileNotFoundError
        If the weights file is missing from the installed package.
    """
    return _load_weights(build_text_model(), TEXT_WEIGHTS_FILE, "train_transformers")
