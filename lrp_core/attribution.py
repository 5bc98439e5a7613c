"""Attributors: run a model on an input and return ``(output, relevance)``.

Every attributor takes ``model, composite=None, attr_output=None``. A composite (rules for LRP)
is registered for the duration of a call, or once for a whole ``with attributor:`` block.

The *seed* says which part of the output is explained. It is ``attr_output`` given at call
time, else the one given at construction:

- a tensor: used as is (broadcast to the output's shape), e.g. one-hot rows ``eye(C)[targets]``;
- a callable: applied to the (detached) model output, its result is the seed;
- ``None``: the output itself.

Gradient-based attributors pass the seed as the output gradient of the backward pass.
:class:`Occlusion` scores each occluded input by the *seeded output* summed per sample:
``seed * output`` for a tensor seed, ``attr_output(output)`` for a callable, ``output`` for None.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from numbers import Integral
from typing import Any

import torch
from torch import nn

from ._engine import (
    Attributor,
    AttrOutput,
    BatchedAttributor,
    MeanGradientAttributor,
    OutputSeed,
    check_output,
    check_positive_int,
)

__all__ = [
    "Attributor",
    "Gradient",
    "IntegratedGradients",
    "Occlusion",
    "OutputSeed",
    "SmoothGrad",
    "constant",
    "identity",
    "occlude_independent",
    "occlude_outside",
    "occlude_window",
]

WindowSpec = int | Sequence[int]


class Gradient(Attributor):
    """The (rule-modified) gradient of the seeded output with respect to the input.

    Parameters
    ----------
    create_graph:
        Keep the graph of the backward pass, so the relevance can be differentiated again
        (the returned output then keeps its graph too).
    retain_graph:
        Passed to ``torch.autograd.grad`` (default: ``create_graph``).

    If the input already requires gradients it is used as is (second-order gradients with
    respect to it work); otherwise a detached copy is used.
    """

    def __init__(
        self,
        model: nn.Module,
        composite: object = None,
        attr_output: AttrOutput = None,
        create_graph: bool = False,
        retain_graph: bool | None = None,
    ) -> None:
        super().__init__(model, composite, attr_output)
        self.create_graph = create_graph
        self.retain_graph = retain_graph

    def grad(
        self, input: torch.Tensor, attr_output_fn: AttrOutput | OutputSeed
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One forward and backward pass at ``input`` with the rules registered now.

        Returns ``(output, gradient)``: the model output (with its graph) and the gradient of
        ``⟨output, seed⟩`` with respect to ``input``. ``attr_output_fn`` gives the seed: a
        callable of the (detached) output, or a tensor or None as ``attr_output``. The composite
        is not registered here (``with attributor:`` does that). An input that does not require
        gradients is replaced by a detached copy that does (the caller's tensor is not changed).
        """
        return self._seeded_pass(input, attr_output_fn, self.create_graph, self.retain_graph)

    def forward(
        self, input: torch.Tensor, attr_output_fn: Callable[[torch.Tensor], torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        output, gradient = self.grad(input, attr_output_fn)
        if not self.create_graph:
            output = output.detach()
        return output, gradient


class SmoothGrad(MeanGradientAttributor):
    """Mean gradient over noisy copies of the input.

    With ``σ = noise_level * (max - min)`` of each sample over its non-batch axes, pass
    ``k = 1 … n_iter - 1`` evaluates the gradient at ``input + σ * ε_k`` with
    ``ε_k = torch.randn(input.shape, generator=generator, dtype=input.dtype, device=D)`` drawn in
    order (``D`` is the generator's device, else the input's); the last pass uses no noise, so
    ``n_iter=1`` equals :class:`Gradient`. Returns the model output at the input and the mean of
    the gradients.

    Parameters
    ----------
    create_graph, retain_graph:
        As for :class:`Gradient` (placed as in the reference library's signature).
    noise_level:
        Noise standard deviation relative to each sample's value range (>= 0).
    n_iter:
        Number of gradients averaged (>= 1).
    batch_size:
        Noisy copies evaluated per forward pass (``None``: automatic). Results do not depend
        on it for models whose samples do not interact (eval mode).
    generator:
        Optional ``torch.Generator`` for the noise (``None``: the global generator).
    """

    def __init__(
        self,
        model: nn.Module,
        composite: object = None,
        attr_output: AttrOutput = None,
        create_graph: bool = False,
        retain_graph: bool | None = None,
        noise_level: float = 0.1,
        n_iter: int = 20,
        batch_size: int | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(model, composite, attr_output, create_graph, retain_graph, batch_size)
        if not isinstance(noise_level, (int, float)) or not math.isfinite(noise_level):
            raise ValueError(f"noise_level must be a finite number >= 0, got {noise_level!r}.")
        if noise_level < 0:
            raise ValueError(
                f"noise_level must be >= 0, got {noise_level!r}: it scales each sample's value "
                "range to the noise standard deviation (0 gives plain gradients)."
            )
        n_iter = check_positive_int(n_iter, "n_iter", "use n_iter >= 1 (1 gives plain gradients).")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}.")
        self.noise_level = float(noise_level)
        self.n_iter = n_iter
        self.generator = generator

    def _points(self, input: torch.Tensor) -> Iterator[torch.Tensor]:
        axes = tuple(range(1, input.ndim))
        span = input.amax(axes, keepdim=True) - input.amin(axes, keepdim=True)
        sigma = self.noise_level * span
        device = input.device if self.generator is None else self.generator.device
        for _ in range(self.n_iter - 1):
            noise = torch.randn(
                input.shape, generator=self.generator, dtype=input.dtype, device=device
            )
            yield input + sigma * noise.to(input.device)
        yield input

    def forward(
        self, input: torch.Tensor, attr_output_fn: Callable[[torch.Tensor], torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        input = self._graph_input(input)
        return self._mean_gradient(input, self._points(input), attr_output_fn)


class IntegratedGradients(MeanGradientAttributor):
    """Path-integrated gradients from a baseline to the input (right Riemann sum).

    With baseline ``b = baseline_fn(input)`` (zeros by default), the relevance is
    ``(input - b) * mean_k grad(b + (k / n_iter) * (input - b))`` for ``k = 1 … n_iter`` (the
    last point is the input itself). The returned output is the model output at the input.

    Parameters
    ----------
    create_graph, retain_graph:
        As for :class:`Gradient` (placed as in the reference library's signature).
    baseline_fn:
        Callable mapping the input to a baseline tensor of the same shape (or broadcastable).
    n_iter:
        Number of Riemann steps (>= 1).
    batch_size:
        Path points evaluated per forward pass (``None``: automatic).
    """

    def __init__(
        self,
        model: nn.Module,
        composite: object = None,
        attr_output: AttrOutput = None,
        create_graph: bool = False,
        retain_graph: bool | None = None,
        baseline_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
        n_iter: int = 20,
        batch_size: int | None = None,
    ) -> None:
        super().__init__(model, composite, attr_output, create_graph, retain_graph, batch_size)
        if baseline_fn is not None and not callable(baseline_fn):
            raise TypeError(
                f"baseline_fn must be a callable of the input (or None for zeros), "
                f"got {type(baseline_fn).__name__}."
            )
        n_iter = check_positive_int(n_iter, "n_iter", "use n_iter >= 1 Riemann steps.")
        self.baseline_fn = baseline_fn
        self.n_iter = n_iter

    def _baseline(self, input: torch.Tensor) -> torch.Tensor:
        if self.baseline_fn is None:
            return torch.zeros_like(input)
        baseline = self.baseline_fn(input)
        if not isinstance(baseline, torch.Tensor):
            raise TypeError(f"baseline_fn returned {type(baseline).__name__}, not a tensor.")
        try:
            return baseline.detach().to(input).expand(input.shape)
        except RuntimeError as error:
            raise ValueError(
                f"baseline_fn returned shape {tuple(baseline.shape)}, which does not broadcast "
                f"to the input's shape {tuple(input.shape)}."
            ) from error

    def forward(
        self, input: torch.Tensor, attr_output_fn: Callable[[torch.Tensor], torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        input = self._graph_input(input)
        baseline = self._baseline(input)
        difference = input - baseline
        points = (
            input if k == self.n_iter else baseline + (k / self.n_iter) * difference
            for k in range(1, self.n_iter + 1)
        )
        output, mean = self._mean_gradient(input, points, attr_output_fn)
        return output, difference * mean


def identity(obj: Any) -> Any:
    """Return ``obj`` unchanged (e.g. an ``attr_output`` that passes the output through)."""
    return obj


def constant(obj: Any) -> Callable[..., Any]:
    """Return a function that ignores its arguments and always returns ``obj`` itself."""

    def constant_function(*args: Any, **kwargs: Any) -> Any:
        return obj

    return constant_function


def occlude_independent(
    input: torch.Tensor,
    mask: torch.Tensor,
    fill_fn: Callable[[torch.Tensor], torch.Tensor] = torch.zeros_like,
    invert: bool = False,
) -> torch.Tensor:
    """Keep the input inside the window (``mask`` true) and fill the rest with ``fill_fn(input)``.

    With ``invert`` it is the other way round: the window is filled and the rest kept (the classic
    occlusion, also available as :func:`occlude_window`). The default ``occlusion_fn`` of
    :class:`Occlusion` is ``occlude_independent`` with its defaults, as in the reference library.
    """
    fill = fill_fn(input)
    return torch.where(mask, fill, input) if invert else torch.where(mask, input, fill)


def occlude_outside(input: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Keep the input inside the window and zero it outside (the default ``occlusion_fn``)."""
    return input.masked_fill(~mask, 0.0)


def occlude_window(input: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The classic occlusion: zero the input inside the window, keep the rest."""
    return input.masked_fill(mask, 0.0)


def _check_window(value: object, name: str) -> WindowSpec:
    hint = f"pass a positive int or a tuple of positive ints, e.g. {name}=8 or {name}=(1, 8, 8)."
    items = (value,) if isinstance(value, Integral) else value
    if (
        not isinstance(value, (Integral, tuple, list))
        or len(items) == 0
        or not all(isinstance(item, Integral) and not isinstance(item, bool) for item in items)
        or not all(item > 0 for item in items)
    ):
        raise ValueError(f"{name} must be positive, got {value!r}: {hint}")
    return int(value) if isinstance(value, Integral) else tuple(int(item) for item in value)


def _complete(spec: WindowSpec, shape: Sequence[int], fill: Sequence[int], name: str) -> tuple:
    """Resolve an int or short tuple to one size per axis (see :class:`Occlusion`)."""
    if isinstance(spec, int):
        spec = (spec,) * (len(shape) - 1)
    if len(spec) > len(shape):
        raise ValueError(
            f"{name}={spec!r} has more entries than the input has axes ({len(shape)}): "
            "give at most one entry per axis."
        )
    full = tuple(fill[: len(shape) - len(spec)]) + tuple(spec)
    return tuple(min(size, limit) for size, limit in zip(full, shape, strict=True))


class Occlusion(BatchedAttributor):
    """Occlusion: score the model on masked inputs and credit the scores to the window.

    Window and stride: an int ``w`` means ``min(w, size)`` along every non-batch axis
    (channels included) and the full batch along the batch axis. A tuple shorter than the
    input's rank is completed from the left: the window by the full size of each leading axis
    (the whole batch), the stride by the window. Along each axis the window starts at offsets
    ``0, s, 2s, … < size`` and wraps around at the far edge (a window of width w at offset o
    covers the indices ``(o + j) mod size``, j < w, as in the reference library). For each
    position, ``mask`` is true inside the window; the model runs without gradients on
    ``occlusion_fn(input, mask)``, and every
    element inside the window adds the per-sample sum of the seeded output (see the module
    docstring). The returned output is the model output at the unoccluded input.

    Forward calls: first the occluded inputs, window position by window position (axis by axis,
    the last axis fastest), without gradients; last the unoccluded input, in the caller's grad
    mode. With ``batch_size=1`` this is exactly the reference library's sequence of calls and
    inputs; a larger ``batch_size`` concatenates that many consecutive occluded inputs along the
    batch axis into one call (same order, fewer calls), and the unoccluded call stays last.

    Parameters
    ----------
    occlusion_fn:
        ``(input, mask) -> occluded input``; default :func:`occlude_outside` (keep the window,
        zero the rest); :func:`occlude_window` is the classic variant (zero the window).
    window, stride:
        Positive int or tuple of positive ints.
    batch_size:
        Occluded inputs evaluated per forward pass (``None``: automatic).
    """

    def __init__(
        self,
        model: nn.Module,
        composite: object = None,
        attr_output: AttrOutput = None,
        occlusion_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        window: WindowSpec = 8,
        stride: WindowSpec = 8,
        batch_size: int | None = None,
    ) -> None:
        super().__init__(model, composite, attr_output, batch_size)
        if occlusion_fn is not None and not callable(occlusion_fn):
            raise TypeError(
                "occlusion_fn must be a callable (input, mask) -> tensor, e.g. "
                f"lrp_core.attribution.occlude_window, got {type(occlusion_fn).__name__}."
            )
        self.occlusion_fn = occlude_outside if occlusion_fn is None else occlusion_fn
        self.window = _check_window(window, "window")
        self.stride = _check_window(stride, "stride")

    def resolve(self, shape: Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Return the per-axis ``(window, stride)`` used for an input of ``shape``."""
        shape = tuple(shape)
        window = _complete(self.window, shape, shape, "window")
        return window, _complete(self.stride, shape, window, "stride")

    def _occluded(self, input: torch.Tensor, masks: list[torch.Tensor]) -> torch.Tensor:
        parts = []
        for mask in masks:
            occluded = self.occlusion_fn(input, mask)
            if not isinstance(occluded, torch.Tensor) or occluded.shape != input.shape:
                raise ValueError(
                    "occlusion_fn must return a tensor shaped like the input "
                    f"{tuple(input.shape)}, got {getattr(occluded, 'shape', type(occluded))}."
                )
            parts.append(occluded)
        return torch.cat(parts)

    @staticmethod
    def _masks(input: torch.Tensor, window: tuple, stride: tuple) -> Iterator[torch.Tensor]:
        """Boolean masks of the window at every offset, wrapping around at the far edges."""
        axes = []
        for axis, (length, width, step) in enumerate(zip(input.shape, window, stride, strict=True)):
            shape = [1] * input.ndim
            shape[axis] = length
            indices = torch.arange(length, device=input.device)
            # window at offset o covers (o + j) mod length for j < width
            axes.append(
                [
                    ((indices - start) % length < width).reshape(shape)
                    for start in range(0, length, step)
                ]
            )
        for parts in itertools.product(*axes):
            mask = parts[0]
            for part in parts[1:]:
                mask = mask & part
            yield mask.expand(input.shape)

    def forward(
        self, input: torch.Tensor, attr_output_fn: Callable[[torch.Tensor], torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        input = input.detach()
        score_fn = getattr(attr_output_fn, "score", None)
        if score_fn is None:  # a plain function: its result is the seeded output
            score_fn = lambda out: attr_output_fn(out).reshape(out.shape[0], -1).sum(1)  # noqa: E731
        window, stride = self.resolve(input.shape)
        size = input.shape[0]
        trailing = (1,) * (input.ndim - 1)
        masks = self._masks(input, window, stride)
        relevance = torch.zeros_like(input)
        copies = self._copies_per_pass(input)
        with torch.no_grad():
            while chunk := list(itertools.islice(masks, copies)):
                outputs = self.model(self._occluded(input, chunk))
                outputs = check_output(outputs, batch=size * len(chunk)).split(size)
                for mask, part in zip(chunk, outputs, strict=True):
                    scores = score_fn(part).reshape((size,) + trailing)
                    relevance += mask * scores
        # the unoccluded pass comes last, in the caller's grad mode, as in the reference library
        output = check_output(self.model(input), batch=size)
        return output, relevance
