"""Peak live tensor memory of a computation on any device, measured from Python.

``PeakMemory`` is a ``TorchDispatchMode``: every storage that an operation creates while the
mode is active is counted once (by its byte size) until a weak-reference finalizer reports it
freed. Storages that existed before (parameters, the input) are not counted, so ``peak`` is the
largest number of bytes the computation itself held at once: activations kept for the backward
pass, local graphs, modified parameters and other temporaries.
"""

from __future__ import annotations

import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class PeakMemory(TorchDispatchMode):
    """Track the peak bytes of storages allocated while active (``with PeakMemory() as m: ...``)."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._seen: set[int] = set()

    def _freed(self, key: int, size: int) -> None:
        self._seen.discard(key)
        self.live -= size

    def _track(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        key = id(storage)
        if key in self._seen:
            return
        size = storage.nbytes()
        self._seen.add(key)
        self.live += size
        self.peak = max(self.peak, self.live)
        weakref.finalize(storage, self._freed, key, size)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        inputs = {
            id(t.untyped_storage())
            for t in tree_flatten((args, kwargs))[0]
            if isinstance(t, torch.Tensor)
        }
        for obj in tree_flatten(result)[0]:
            if isinstance(obj, torch.Tensor) and not obj.is_meta:
                if id(obj.untyped_storage()) not in inputs:
                    self._track(obj)
        return result
