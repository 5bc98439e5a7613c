"""The attributor mechanism: seeds, input checks, composite registration, batched passes.

The public attributors, and the meaning of seeds, are in :mod:`lrp_core.attribution`; this module
holds what they share.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterable
from numbers import Integral

import torch
from torch import nn

__all__ = ["AttrOutput", "Attributor", "BatchedAttributor", "MeanGradientAttributor", "OutputSeed"]

AttrOutput = torch.Tensor | Callable[[torch.Tensor], torch.Tensor] | None

# Automatic chunking puts at most this many input elements into one forward pass.
_AUTO_PASS_ELEMENTS = 2**20


def check_attr_output(attr_output: object) -> None:
    """Raise TypeError unless ``attr_output`` is None, a tensor or a callable."""
    if attr_output is not None and not isinstance(attr_output, torch.Tensor):
        if not callable(attr_output):
            raise TypeError(
                "attr_output must be a tensor, a callable of the model output, or None, "
                f"got {type(attr_output).__name__}."
            )


def check_positive_int(value: object, name: str, hint: str) -> int:
    """Return ``value`` if it is an int >= 1, else raise ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}: {hint}")
    return int(value)


def check_input(input: object) -> torch.Tensor:
    """Return ``input`` if it is a finite floating-point tensor with a batch axis, else raise."""
    if not isinstance(input, torch.Tensor):
        raise TypeError(f"input must be a torch.Tensor, got {type(input).__name__}.")
    if not input.is_floating_point():
        raise TypeError(
            f"input must be a floating-point tensor, got dtype {input.dtype}: convert it, "
            "e.g. input.float()."
        )
    if input.ndim < 1:
        raise ValueError("input must have a batch axis (shape (N, ...)): use input[None].")
    if not torch.isfinite(input).all():
        raise ValueError("input contains NaN or infinity: replace them, e.g. torch.nan_to_num.")
    return input


def check_output(output: object, batch: int | None = None) -> torch.Tensor:
    """Return the model ``output`` if it is one tensor (with batch size ``batch``), else raise."""
    if not isinstance(output, torch.Tensor):
        raise TypeError(
            f"the model returned {type(output).__name__}; attributors need a model that returns "
            "one tensor: wrap it in a module that selects the output to explain."
        )
    if batch is not None and (output.ndim < 1 or output.shape[0] != batch):
        raise ValueError(
            f"the model output has shape {tuple(output.shape)}, but its first axis must be the "
            f"batch axis of size {batch}: make the model keep the batch axis, or use batch_size=1."
        )
    return output


class OutputSeed:
    """The resolved seed of one call (see the module docstring).

    Calling it on a model output returns the output gradient of the backward pass (shape of the
    output); :meth:`score` returns the per-sample sum of the seeded output, shape ``(N,)``.
    """

    def __init__(self, attr_output: AttrOutput) -> None:
        check_attr_output(attr_output)
        self.attr_output = attr_output

    def _fit(self, seed: object, output: torch.Tensor) -> torch.Tensor:
        """Broadcast a seed tensor to the output's shape, dtype and device."""
        if not isinstance(seed, torch.Tensor):
            raise TypeError(
                f"attr_output returned {type(seed).__name__}; it must return a tensor shaped "
                "like the model output."
            )
        try:
            shape = torch.broadcast_shapes(seed.shape, output.shape)
        except RuntimeError:
            shape = None
        if shape != output.shape:
            raise ValueError(
                f"attr_output has shape {tuple(seed.shape)}, but the model output has shape "
                f"{tuple(output.shape)}: give a tensor of the output's shape (or one that "
                "broadcasts to it), e.g. one-hot rows torch.eye(n_classes)[targets]."
            )
        return seed.to(dtype=output.dtype, device=output.device).expand(output.shape)

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        """Return the output gradient (the seed) for ``output``."""
        output = output.detach()
        if self.attr_output is None:
            return output
        if isinstance(self.attr_output, torch.Tensor):
            return self._fit(self.attr_output, output)
        return self._fit(self.attr_output(output), output)

    def score(self, output: torch.Tensor) -> torch.Tensor:
        """Return the seeded output summed over all but the batch axis, shape ``(N,)``."""
        output = output.detach()
        if self.attr_output is None:
            seeded = output
        elif isinstance(self.attr_output, torch.Tensor):
            seeded = self._fit(self.attr_output, output) * output
        else:
            seeded = self.attr_output(output)
            if not (
                isinstance(seeded, torch.Tensor)
                and seeded.ndim >= 1
                and seeded.shape[0] == output.shape[0]
            ):
                seeded = self._fit(seeded, output)
        return seeded.reshape(seeded.shape[0], -1).sum(dim=1)


class Attributor:
    """Base class: holds the model, composite and default seed; subclasses define ``forward``.

    Parameters
    ----------
    model:
        The model to explain; it must return one tensor.
    composite:
        Composite of rules registered while attributing (``None``: plain gradients). Anything
        with ``register(module)`` and ``remove()`` works.
    attr_output:
        Default seed (tensor, callable of the output, or None), see the module docstring.

    Used as a context manager, the composite is registered once on entry and removed on exit
    (also on error); outside a ``with`` block each call registers and removes it.
    """

    def __init__(
        self, model: nn.Module, composite: object = None, attr_output: AttrOutput = None
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
        if composite is not None and not (
            callable(getattr(composite, "register", None))
            and callable(getattr(composite, "remove", None))
        ):
            raise TypeError(
                "composite must provide register(module) and remove() (e.g. a "
                f"lrp_core.composites composite), got {type(composite).__name__}."
            )
        check_attr_output(attr_output)
        self.model = model
        self.composite = composite
        self.attr_output = attr_output
        self._depth = 0
        self._owns_registration = False

    def __enter__(self) -> Attributor:
        if self._depth == 0:
            # a composite already registered elsewhere (e.g. by composite.context) is left alone
            self._owns_registration = self.composite is not None and not getattr(
                self.composite, "handles", None
            )
            if self._owns_registration:
                self.composite.register(self.model)
        self._depth += 1
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._depth -= 1
        if self._depth == 0 and self._owns_registration:
            self._owns_registration = False
            self.composite.remove()

    def __call__(
        self, input: torch.Tensor, attr_output: AttrOutput = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attribute ``input``; returns ``(output, relevance)`` (relevance shaped like input).

        ``attr_output`` overrides the seed given at construction for this call.
        """
        input = check_input(input)
        seed = OutputSeed(self.attr_output if attr_output is None else attr_output)
        with self, torch.enable_grad():
            return self.forward(input, seed)

    def forward(
        self, input: torch.Tensor, attr_output_fn: Callable[[torch.Tensor], torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Compute ``(output, relevance)``; ``attr_output_fn`` maps an output to its seed."""
        raise NotImplementedError

    @property
    def inactive(self) -> Callable[[], contextlib.AbstractContextManager]:
        """The composite's ``inactive``: ``with attributor.inactive():`` runs plain gradients.

        Without a composite (or one without ``inactive``) it is a context that changes nothing.
        """
        inactive = getattr(self.composite, "inactive", None)
        return inactive if callable(inactive) else contextlib.nullcontext

    def _seeded_pass(
        self,
        input: torch.Tensor,
        attr_output_fn: AttrOutput | OutputSeed,
        create_graph: bool = False,
        retain_graph: bool | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``grad`` of the gradient attributors: one pass with the rules registered now.

        ``attr_output_fn`` is an :class:`OutputSeed` or anything ``attr_output`` accepts. An input
        that does not require gradients is replaced by a detached copy that does.
        """
        input = check_input(input)
        seed = attr_output_fn
        if not isinstance(seed, OutputSeed):
            seed = OutputSeed(attr_output_fn)
        if not input.requires_grad:
            input = input.detach().requires_grad_(True)
        with torch.enable_grad():
            return self._gradient(input, seed, create_graph, retain_graph=retain_graph)

    def _gradient(
        self, input: torch.Tensor, attr_output_fn: Callable, create_graph: bool = False, **kw
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One forward and backward pass: the output and the seeded gradient w.r.t. input."""
        output = check_output(self.model(input))
        (gradient,) = torch.autograd.grad(
            (output,),
            (input,),
            grad_outputs=(attr_output_fn(output),),
            create_graph=create_graph,
            allow_unused=True,
            **kw,
        )
        if gradient is None:  # the output does not depend on the input
            gradient = torch.zeros_like(input)
        return output, gradient


class BatchedAttributor(Attributor):
    """An attributor that evaluates several modified copies of the input per forward pass."""

    def __init__(
        self,
        model: nn.Module,
        composite: object = None,
        attr_output: AttrOutput = None,
        batch_size: int | None = None,
    ) -> None:
        super().__init__(model, composite, attr_output)
        if batch_size is not None:
            batch_size = check_positive_int(
                batch_size,
                "batch_size",
                "pass the input copies per forward pass, or None to choose automatically.",
            )
        self.batch_size = batch_size

    def _copies_per_pass(self, input: torch.Tensor) -> int:
        """Input copies per pass: ``batch_size``, or automatic (1 where copies could interact).

        Automatic chunking stays at 1 in training mode (batch statistics, dropout) and when a
        composite is used on a batch of several samples (rules may hold per-sample tensors).
        """
        if self.batch_size is not None:
            return self.batch_size
        if self.model.training or (self.composite is not None and input.shape[0] > 1):
            return 1
        return max(1, _AUTO_PASS_ELEMENTS // max(1, input.numel()))


class MeanGradientAttributor(BatchedAttributor):
    """The mean seeded gradient over ``n_iter`` points made from the input (the subclass says
    which points and sets ``n_iter``); ``create_graph`` and ``retain_graph`` act as for
    ``Gradient``."""

    n_iter: int

    def __init__(
        self,
        model: nn.Module,
        composite: object = None,
        attr_output: AttrOutput = None,
        create_graph: bool = False,
        retain_graph: bool | None = None,
        batch_size: int | None = None,
    ) -> None:
        super().__init__(model, composite, attr_output, batch_size)
        self.create_graph = create_graph
        self.retain_graph = retain_graph

    def grad(
        self, input: torch.Tensor, attr_output_fn: AttrOutput | OutputSeed
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One forward and backward pass at ``input`` with the rules registered now:
        ``(output, gradient)``, seeded by ``attr_output_fn`` (see ``Gradient.grad``)."""
        return self._seeded_pass(input, attr_output_fn, self.create_graph, self.retain_graph)

    def _graph_input(self, input: torch.Tensor) -> torch.Tensor:
        """The input the passes start from: detached, unless ``create_graph`` asks for higher-order
        derivatives with respect to an input that requires gradients."""
        if self.create_graph and input.requires_grad:
            return input
        return input.detach()

    def _mean_gradient(
        self, input: torch.Tensor, points: Iterable[torch.Tensor], attr_output_fn: Callable
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The model output at the last point and the mean of the seeded gradients at ``points``
        (``n_iter`` of them, derived from ``input``)."""
        copies = self._copies_per_pass(input)
        output, total = self._sum_gradients(
            points, attr_output_fn, copies, self.create_graph, self.retain_graph
        )
        return output, total / self.n_iter

    def _sum_gradients(
        self,
        points: Iterable[torch.Tensor],
        attr_output_fn: Callable,
        copies: int,
        create_graph: bool = False,
        retain_graph: bool | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sum the seeded gradients at ``points`` (in order), ``copies`` points per pass.

        Returns the model output at the last point and the sum of the gradients; with
        ``create_graph`` both keep their graphs (for higher-order derivatives).
        """
        points = iter(points)
        total = output = None
        options = {"create_graph": create_graph, "retain_graph": retain_graph}
        while chunk := list(itertools.islice(points, copies)):
            size = chunk[0].shape[0]
            batch = torch.cat(chunk)
            if not batch.requires_grad:
                batch.requires_grad_(True)
            if len(chunk) == 1:
                outputs, gradients = self._gradient(batch, attr_output_fn, **options)
                outputs, gradients = (outputs,), (gradients,)
            else:
                joint = check_output(self.model(batch), batch=size * len(chunk))
                outputs = joint.split(size)
                seeds = torch.cat([attr_output_fn(part) for part in outputs])
                (gradient,) = torch.autograd.grad(
                    (joint,), (batch,), grad_outputs=(seeds,), allow_unused=True, **options
                )
                gradients = (torch.zeros_like(batch) if gradient is None else gradient).split(size)
            for gradient in gradients:
                total = gradient if total is None else total + gradient
            output = outputs[-1]
        if total is None:
            raise ValueError("no points to evaluate: n_iter must be at least 1.")
        if create_graph:
            return output, total
        return output.detach(), total.detach()
