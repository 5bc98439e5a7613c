"""The demo: a procedurally generated shape dataset and a small trained CNN, shipped offline.

>>> from lrp_widgets.demo import load_model, make_batch
>>> model = load_model()
>>> images, labels, masks = make_batch(8, seed=1)
>>> predictions = model(images).argmax(dim=1)

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

__all__ = [
    "CLASSES",
    "IMAGE_SIZE",
    "INPUT_HIGH",
    "INPUT_LOW",
    "ResidualBlock",
    "ShapeNet",
    "build_model",
    "demo_canonizers",
    "load_model",
    "make_batch",
    "to_display_image",
]

CLASSES: tuple[str, ...] = SHAPES
register_canonizers("demo", demo_canonizers)  # so configs and to_code() name them
INPUT_LOW = -1.0
INPUT_HIGH = 1.0
WEIGHTS_FILE = "weights.pt"


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


def load_model() -> nn.Module:
    """The trained demo model: shipped weights, float32, on the CPU, in eval mode.

    Raises
    ------
    FileNotFoundError
        if the weights file is missing from the installed package.
    """
    weights = resources.files(__package__).joinpath(WEIGHTS_FILE)
    if not weights.is_file():
        raise FileNotFoundError(
            f"the demo weights {WEIGHTS_FILE!r} are missing from {__package__}; "
            "recreate them with `python -m lrp_widgets.demo.train`"
        )
    with resources.as_file(weights) as path:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    model = build_model()
    model.load_state_dict(state_dict)
    return model.float().eval()
