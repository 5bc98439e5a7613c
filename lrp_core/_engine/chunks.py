"""Run a linear-type module on slices of its output channels, to bound modified-parameter memory.

A rule whose parameter modifiers and gradient mapper act element by element (all built-in LRP
rules) gives exactly the same relevance when the module's output channels are processed in
slices: each output element depends only on its own channel's parameters, and the VJPs of the
slices add up. Processing slices keeps only one slice of the modified parameters alive at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

LINEAR_TYPES = (torch.nn.Linear, torch.nn.modules.conv._ConvNd)
#: smallest budget (bytes) for one slice of modified parameters
MIN_BUDGET = 5 << 20


def _weight_axis(module: torch.nn.Module) -> int:
    return 1 if getattr(module, "transposed", False) else 0


def output_chunks(module: torch.nn.Module, budget: int) -> list[tuple[int, int]] | None:
    """Output channel ranges whose parameters take at most ``max(budget, MIN_BUDGET)`` bytes each.

    None when the module cannot be sliced (not linear-type, grouped convolution) or needs no
    slicing.
    """
    if not isinstance(module, LINEAR_TYPES) or getattr(module, "groups", 1) != 1:
        return None
    weight = module._parameters.get("weight")
    if weight is None:
        return None
    n_out = weight.shape[_weight_axis(module)]
    per_channel = weight.numel() // max(n_out, 1) * weight.element_size()
    size = max(1, max(budget, MIN_BUDGET) // max(per_channel, 1))
    if size >= n_out:
        return None
    return [(start, min(start + size, n_out)) for start in range(0, n_out, size)]


@contextmanager
def sliced(module: torch.nn.Module, chunk: tuple[int, int] | None) -> Iterator[None]:
    """Within the block the module computes only the output channels ``chunk`` (start, stop)."""
    if chunk is None:
        yield
        return
    start, stop = chunk
    originals = {
        name: module._parameters[name]
        for name in ("weight", "bias")
        if module._parameters.get(name) is not None
    }
    try:
        module._parameters["weight"] = originals["weight"].narrow(
            _weight_axis(module), start, stop - start
        )
        if "bias" in originals:
            module._parameters["bias"] = originals["bias"][start:stop]
        yield
    finally:
        module._parameters.update(originals)


def output_slice(
    tensor: torch.Tensor, module: torch.nn.Module, chunk: tuple[int, int] | None
) -> torch.Tensor:
    """The part of a module output (or its gradient) that belongs to the channels ``chunk``."""
    if chunk is None:
        return tensor
    if isinstance(module, torch.nn.Linear):
        axis = tensor.ndim - 1
    else:
        axis = 1 if tensor.ndim == module.weight.ndim else 0
    return tensor.narrow(axis, chunk[0], chunk[1] - chunk[0])
