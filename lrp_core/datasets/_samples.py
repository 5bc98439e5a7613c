"""Samples of a data set: what one item may look like, and batches by fixed index ranges.

An item is an image tensor ``[C, H, W]``, a tuple or list ``(image,)``, ``(image, label)`` or
``(image, label, mask)``, or a dict with ``"image"`` (or ``"input"``), ``"label"`` and ``"mask"``.
A label is an int (or a 0-d tensor); a mask is ``[H, W]`` or ``[1, H, W]``, boolean or 0/1.

Batch ``b`` always holds samples ``b * batch_size`` up to the next batch's start (the last batch
may be shorter), whatever ran before: that is what makes a stopped run resumable, sample for
sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, SequentialSampler

from ._errors import DatasetAttributionError


@dataclass
class Batch:
    """Collated samples: ``images [B, C, H, W]``, ``labels [B]`` (or None), ``masks [B, H, W]``
    bool (or None), ``indices [B]`` (positions in the data set)."""

    images: torch.Tensor
    labels: torch.Tensor | None
    masks: torch.Tensor | None
    indices: torch.Tensor


def _parts(item: Any, position: int) -> tuple[Any, Any, Any]:
    if isinstance(item, torch.Tensor):
        return item, None, None
    if isinstance(item, dict):
        image = item.get("image", item.get("input"))
        return image, item.get("label"), item.get("mask")
    if isinstance(item, tuple | list) and 1 <= len(item) <= 3:
        return (*item, None, None)[:3]
    raise DatasetAttributionError(
        f"dataset: item {position} is a {type(item).__name__}; items must be an image tensor, "
        "(image, label[, mask]) or a dict with 'image', 'label', 'mask'"
    )


def _image(value: Any, position: int) -> torch.Tensor:
    if not isinstance(value, torch.Tensor) or value.ndim != 3 or not value.is_floating_point():
        shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise DatasetAttributionError(
            f"dataset: the image of item {position} must be a floating point tensor [C, H, W], "
            f"got {shape}"
        )
    return value


def _mask(value: Any, position: int, size: tuple[int, int]) -> torch.Tensor:
    mask = torch.as_tensor(value)
    if mask.ndim == 3 and mask.shape[0] == 1:
        mask = mask[0]
    if tuple(mask.shape) != size or not ((mask == 0) | (mask == 1)).all():
        raise DatasetAttributionError(
            f"dataset: the mask of item {position} must be a 0/1 or boolean [H, W] = {list(size)} "
            f"tensor, got shape {list(mask.shape)}"
        )
    return mask.bool()


def collate(items: Sequence[Any], start: int) -> Batch:
    """One :class:`Batch` from consecutive items (``start``: the first one's position)."""
    images, labels, masks = [], [], []
    for offset, item in enumerate(items):
        image, label, mask = _parts(item, start + offset)
        images.append(_image(image, start + offset))
        labels.append(label)
        masks.append(None if mask is None else _mask(mask, start + offset, image.shape[1:]))
    for name, values in (("labels", labels), ("masks", masks)):
        if any(v is None for v in values) and any(v is not None for v in values):
            raise DatasetAttributionError(
                f"dataset: some items in {start}..{start + len(items) - 1} have {name} and some "
                "do not; give them for every item or for none"
            )
    try:
        stacked = torch.stack(images)
    except RuntimeError:
        raise DatasetAttributionError(
            f"dataset: items {start}..{start + len(items) - 1} have images of different shapes; "
            "resize them to one shape (the store holds [N, C, H, W])"
        ) from None
    return Batch(
        images=stacked,
        labels=None if labels[0] is None else torch.as_tensor([int(v) for v in labels]),
        masks=None if masks[0] is None else torch.stack(masks),
        indices=torch.arange(start, start + len(items)),
    )


@dataclass(frozen=True)
class Plan:
    """Which samples go into which batch."""

    samples: int
    batch_size: int

    @property
    def batches(self) -> int:
        return -(-self.samples // self.batch_size)

    def bounds(self, batch: int) -> tuple[int, int]:
        """``(start, stop)`` sample positions of ``batch``."""
        start = batch * self.batch_size
        return start, min(start + self.batch_size, self.samples)


def source_dataset(data: Any, batch_size: int | None) -> tuple[Dataset, int, int]:
    """(dataset, batch size, loader workers) of a ``Dataset`` or a sequential ``DataLoader``."""
    workers = 0
    if isinstance(data, DataLoader):
        if not isinstance(data.sampler, SequentialSampler) or data.batch_sampler is None:
            raise DatasetAttributionError(
                "data: the DataLoader must read in order (shuffle=False, no custom sampler) so a "
                "stopped run can resume sample for sample; or pass its dataset"
            )
        batch_size = batch_size or data.batch_size
        workers = data.num_workers
        data = data.dataset
    if not isinstance(data, Dataset) or not hasattr(data, "__len__"):
        raise DatasetAttributionError(
            f"data must be a torch Dataset with a length or a DataLoader, got {type(data).__name__}"
        )
    if len(data) == 0:
        raise DatasetAttributionError("data: the dataset is empty")
    batch_size = 32 if batch_size is None else batch_size
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise DatasetAttributionError(f"batch_size must be an int >= 1, got {batch_size!r}")
    return data, batch_size, workers


def load_batch(dataset: Dataset, plan: Plan, batch: int) -> Batch:
    """Read and collate the items of ``batch`` directly from ``dataset``."""
    start, stop = plan.bounds(batch)
    return collate([dataset[i] for i in range(start, stop)], start)


class _Batches(Dataset):
    """The pending batches as items of a ``DataLoader`` (so its workers can prefetch them)."""

    def __init__(self, dataset: Dataset, plan: Plan, batches: Sequence[int]):
        self.dataset, self.plan, self.batches = dataset, plan, list(batches)

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, position: int) -> tuple[int, Batch]:
        batch = self.batches[position]
        return batch, load_batch(self.dataset, self.plan, batch)


def iterate_batches(dataset: Dataset, plan: Plan, batches: Sequence[int], workers: int):
    """Yield ``(batch number, Batch)`` for ``batches`` in order, prefetched by ``workers``
    loader processes (0: in this process)."""
    if workers == 0:
        for batch in batches:
            yield batch, load_batch(dataset, plan, batch)
        return
    loader = DataLoader(
        _Batches(dataset, plan, batches), batch_size=None, num_workers=workers, shuffle=False
    )
    yield from loader
