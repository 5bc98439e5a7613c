"""The record of one hooked module call, and the switch that lets hooks pass calls through.

``ModuleCall`` is what the forward hooks of ``hook_function`` leave for the backward pass and
what every rule's relevance computation reads. While a rule re-runs its module
(``ModuleCall.rerun``), ``bypass_hooks`` makes every hook pass module calls through untouched.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import torch
from torch.utils._pytree import tree_flatten, tree_unflatten

_state = threading.local()


def bypassing() -> bool:
    """Return whether hooks currently pass module calls through untouched (while re-running)."""
    return getattr(_state, "bypass", 0) > 0


def is_float_tensor(obj: Any) -> bool:
    return isinstance(obj, torch.Tensor) and (obj.is_floating_point() or obj.is_complex())


@contextmanager
def bypass_hooks():
    """Let every hook pass module calls through, used while a hook re-runs its module."""
    _state.bypass = getattr(_state, "bypass", 0) + 1
    try:
        yield
    finally:
        _state.bypass -= 1


class ModuleHook(Protocol):
    """A hook the forward hooks of ``hook_function`` drive (``lrp_core.core.Hook``)."""

    active: bool
    stored_tensors: dict

    def forward(self, module: torch.nn.Module, args: tuple, output: Any) -> Any:
        """Called after the module's forward; may replace its output. (A forward with a
        ``kwargs`` parameter before ``output``, Zennit 1.0's form, also gets the keywords.)"""
        ...

    def _keep(self, call: ModuleCall, outputs: list[torch.Tensor]) -> None: ...

    def _needs_local_graph(self, module: torch.nn.Module) -> bool: ...

    def _relevance(self, call: ModuleCall, grad_outputs: tuple) -> tuple: ...


class ModuleCall:
    """What one hooked module call leaves for the backward pass.

    ``originals`` are the caller's tensors (connected to the outer graph), ``inputs`` detached
    aliases that share their storage, ``leaves`` the stand-ins the local graph starts from (or
    None), ``outputs`` the local graph's output tensors (or None) and ``kept`` whatever else the
    hook chose to keep (see ``Hook._keep``, which may also drop any of these). ``released`` is set
    once autograd freed the node (all tensors dropped); ``graph_built`` once a backward pass with
    ``create_graph=True`` went through it (a later pass differentiates that graph).
    """

    __slots__ = (
        "hook",
        "module",
        "spec",
        "flat_args",
        "slots",
        "originals",
        "inputs",
        "leaves",
        "outputs",
        "output_shapes",
        "output_versions",
        "input_versions",
        "kept",
        "stored",
        "input_shapes",
        "released",
        "graph_built",
        "__weakref__",
    )

    def __init__(self, hook: ModuleHook, module: torch.nn.Module, spec, flat_args, slots):
        self.hook = hook
        self.module = module
        self.spec = spec
        self.flat_args = flat_args
        self.slots = slots
        self.originals = [flat_args[i] for i in slots]
        self.inputs = [t.detach() for t in self.originals]
        self.input_shapes = [t.shape for t in self.originals]
        self.released = False
        self.graph_built = False
        self.input_versions = [t._version for t in self.inputs]
        self.leaves = None
        self.outputs = None
        self.output_shapes = None
        self.output_versions = None
        self.kept = None
        self.stored = {}

    def rerun(self, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Call the module again with ``inputs`` in place of the hooked tensor inputs.

        Returns the floating point output tensors as a flat list. Hooks pass the call through.
        """
        flat = list(self.flat_args)
        for slot, tensor in zip(self.slots, inputs, strict=True):
            flat[slot] = tensor
        args, kwargs = tree_unflatten(flat, self.spec)
        with bypass_hooks():
            output = self.module(*args, **kwargs)
        return [t for t in tree_flatten(output)[0] if is_float_tensor(t)]

    def check_inputs_unchanged(self) -> None:
        """Raise if a stored input was modified in place after the module ran."""
        if self.inputs is None:
            return
        for tensor, version in zip(self.inputs, self.input_versions, strict=True):
            if tensor._version != version:
                raise RuntimeError(
                    f"The input of {type(self.module).__name__} was modified in place after the "
                    "module ran, so its relevance cannot be computed. Avoid in-place operations on "
                    "the inputs of hooked modules (e.g. use inplace=False)."
                )

    def outputs_unchanged(self) -> bool:
        """Return whether the kept local outputs still hold the values the module produced."""
        return self.outputs is not None and all(
            t._version == v for t, v in zip(self.outputs, self.output_versions, strict=True)
        )

    def release(self) -> None:
        """Drop every tensor the record holds (after its backward, or when its graph is freed)."""
        self.released = True
        self.originals = self.inputs = self.leaves = self.outputs = self.kept = None
        self.flat_args = None
        self.stored = {}
