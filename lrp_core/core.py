"""Core of the engine: stabilizers, parameter modifiers, hooks and composites.

``Hook`` changes the gradient of one module; ``BasicHook`` is the single mechanism behind all
LRP-type rules (modify inputs, parameters and outputs K ways, map the incoming relevance, reduce);
``Composite`` registers copies of hook templates on the modules of a model.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from functools import partial, wraps
from typing import Any

import torch

from ._engine import (
    CallRegistry,
    Composite,
    CompositeContext,
    MissingParameterError,
    ModuleCall,
    ParamMod,
    RemovableHandle,
    RemovableHandleList,
    Stabilizer,
    basic_relevance,
    bypassing,
    expand,
    stabilize,
    true_gradient,
)
from ._engine import param_identity as _param_identity
from ._engine import post_forward as _post_forward
from ._engine import pre_forward as _pre_forward

__all__ = [
    "Stabilizer",
    "stabilize",
    "expand",
    "collect_leaves",
    "RemovableHandle",
    "RemovableHandleList",
    "ParamMod",
    "Hook",
    "BasicHook",
    "Composite",
    "CompositeContext",
    "Identity",
    "uncompress",
    "zero_wrap",
    "MissingParameterError",
    "HookConflictError",
]


def zero_wrap(zero_params: str | Sequence[str] | None) -> Callable:
    """Decorator for parameter modifiers ``(param, name) -> tensor``: zero the listed names.

    The wrapped modifier returns ``torch.zeros_like(param)`` instead of calling the modifier
    when ``name in zero_params`` (for a string ``zero_params`` that is Python's substring test,
    as in the reference library); ``None`` zeroes nothing.
    """

    def decorator(modifier: Callable[[torch.Tensor, str], torch.Tensor]) -> Callable:
        @wraps(modifier)
        def wrapper(param: torch.Tensor, name: str) -> torch.Tensor:
            if zero_params is not None and name in zero_params:
                return torch.zeros_like(param)
            return modifier(param, name)

        return wrapper

    return decorator


def uncompress(data: Iterable, selector: Iterable, compressed: Iterable) -> Generator:
    """Invert ``itertools.compress``: yield the next ``compressed`` value where ``selector`` is
    true and the ``data`` value where it is false.

    Stops at the end of the shorter of ``data`` and ``selector``, or when ``compressed`` runs out
    at a true selector.
    """
    replacements = iter(compressed)
    for value, selected in zip(data, selector):  # noqa: B905 (stops at the shorter, by design)
        if not selected:
            yield value
            continue
        try:
            yield next(replacements)
        except StopIteration:
            return


class Identity(torch.autograd.Function):
    """Autograd identity: ``Identity.apply(*tensors)`` returns the tensors (as a tuple) with a
    ``grad_fn``, so that a backward hook can be attached; gradients pass unchanged."""

    @staticmethod
    def forward(ctx: Any, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return inputs

    @staticmethod
    def backward(ctx: Any, *grad_outputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return grad_outputs


def collect_leaves(module: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Yield the modules below ``module`` without children (``module`` itself if it has none)."""
    has_children = False
    for child in module.children():
        has_children = True
        yield from collect_leaves(child)
    if not has_children:
        yield module


class Hook:
    """Changes the gradient of the module(s) it is registered on.

    Override ``forward(module, input, output)`` (called after the module ran; may return a new
    output) and ``backward(module, grad_input, grad_output)`` (receives the true gradient with
    respect to the hooked tensor inputs and the gradient at the outputs, both tuples; may return new
    input gradients). ``stored_tensors`` holds per-call data; ``stored_tensors['grad_output']`` is
    set before ``backward``. ``grad_input`` has one entry per tensor input that requires grad,
    positional arguments first, then keyword arguments.
    """

    active: bool = True
    #: keep ``stored_tensors['grad_output']`` after the backward pass (rules default to False
    #: to save memory; set True on a rule to inspect the relevance arriving at its module)
    store_grad_output: bool = True

    def __init__(self) -> None:
        self.stored_tensors: dict[str, Any] = {}
        self.active = True

    def __getattr__(self, name: str) -> Any:
        # subclasses that skip Hook.__init__ still work
        if name == "stored_tensors":
            value: Any = {}
        elif name == "_calls":
            value = CallRegistry()
        else:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        self.__dict__[name] = value
        return value

    def forward(self, module: torch.nn.Module, input: tuple, output: Any) -> Any:
        """Called after each hooked forward call; return a value to replace the output."""
        return None

    def backward(self, module: torch.nn.Module, grad_input: tuple, grad_output: tuple) -> Any:
        """Return new gradients for the inputs, or None to keep ``grad_input``."""
        return None

    def pre_backward(self, module: torch.nn.Module, grad_input: tuple, grad_output: tuple) -> None:
        """Called when the gradient reaches the outputs of a hooked call, before the relevance is
        computed: stores ``grad_output`` as ``stored_tensors['grad_output']`` when
        ``store_grad_output`` is set. ``grad_input`` is the same tuple (the gradient arriving
        at the outputs, as in the reference library)."""
        if self.store_grad_output:
            self.stored_tensors["grad_output"] = grad_output

    def copy(self) -> Hook:
        """A fresh, unregistered hook of the same type (override when ``__init__`` takes args)."""
        return type(self)()

    def remove(self) -> None:
        """Forget every stored tensor."""
        self._calls.clear()
        self.stored_tensors = {}

    def register(self, module: torch.nn.Module) -> RemovableHandleList:
        """Hook ``module``; the returned handles' ``remove()`` undoes it and calls ``remove()``.

        Raises ``HookConflictError`` if another hook of this engine is registered on ``module``
        (two rules on one module have no defined meaning; remove the first one).
        """
        claim = _claim(module, self)
        pre = module.register_forward_pre_hook(
            self._forward_hook("pre_forward", _pre_forward), with_kwargs=True
        )
        post = module.register_forward_hook(
            self._forward_hook("post_forward", _post_forward), with_kwargs=True, always_call=True
        )
        return RemovableHandleList([pre, post, claim, RemovableHandle(self)])

    def pre_forward(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> Any:
        """The forward pre-hook ``register`` installs (torch's ``with_kwargs`` form).

        It prepares the call for the rule's backward; a subclass may override it (calling
        ``super().pre_forward``) to observe the calls. Returns ``(args, kwargs)`` or None.
        """
        return _pre_forward(self, module, args, kwargs)

    def post_forward(self, module: torch.nn.Module, args: tuple, kwargs: dict, output: Any) -> Any:
        """The forward hook ``register`` installs (``with_kwargs`` form): calls ``forward`` and
        routes the output through the rule's backward. Returns the new output or None."""
        return _post_forward(self, module, args, kwargs, output)

    # --- mechanism (see lrp_core._engine.hook_function) ---
    def _forward_hook(self, name: str, engine_hook: Callable) -> Callable:
        """The torch hook for ``pre_forward`` or ``post_forward`` (``name``): the engine's own
        function bound to this hook, or, where a subclass or instance overrides the method, that
        method (skipped on a rule's re-runs)."""
        method = getattr(self, name)
        if name not in self.__dict__ and getattr(type(self), name) is getattr(Hook, name):
            return partial(engine_hook, self)
        return partial(_outside_reruns, method)

    def _needs_local_graph(self, module: torch.nn.Module) -> bool:
        """Whether the backward needs the module's own graph of this call."""
        return True

    def _keep(self, call: ModuleCall, outputs: list[torch.Tensor]) -> None:
        """Choose what the call record keeps for the backward pass (default: everything)."""

    def _relevance(self, call: ModuleCall, grad_outputs: tuple) -> tuple:
        grad_input = true_gradient(call, grad_outputs)
        self.stored_tensors = call.stored
        self.pre_backward(call.module, grad_outputs, grad_outputs)
        result = self.backward(call.module, grad_input, grad_outputs)
        if result is None:
            return grad_input
        return _check_gradients(self, call, result)


def _outside_reruns(forward_hook: Callable, *args: Any) -> Any:
    """Call a hook's ``pre_forward`` or ``post_forward``, except on the module calls that a
    rule's backward pass re-runs (an overriding subclass sees only the model's own calls)."""
    return None if bypassing() else forward_hook(*args)


class HookConflictError(RuntimeError):
    """A module already carries a hook of this engine."""


_OWNERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class _Claim:
    """Marks a module as hooked until removed."""

    def __init__(self, module: torch.nn.Module, hook: Hook):
        self.module = weakref.ref(module)
        self.hook = hook

    def remove(self) -> None:
        module = self.module()
        if module is not None and _OWNERS.get(module) is self:
            del _OWNERS[module]


def registered_hook(module: torch.nn.Module) -> Hook | None:
    """The hook of this engine registered on ``module``, or None."""
    owner = _OWNERS.get(module)
    return None if owner is None else owner.hook


def _claim(module: torch.nn.Module, hook: Hook) -> _Claim:
    owner = _OWNERS.get(module)
    if owner is not None:
        raise HookConflictError(
            f"{type(module).__name__} already has a {type(owner.hook).__name__} hook registered; "
            "remove it (its handles' remove(), or leave its composite's context) before "
            f"registering {type(hook).__name__}."
        )
    claim = _Claim(module, hook)
    _OWNERS[module] = claim
    return claim


def _check_gradients(hook: Hook, call: ModuleCall, result: Any) -> tuple:
    if isinstance(result, torch.Tensor):
        result = (result,)
    result = tuple(result)
    shapes = [tuple(shape) for shape in call.input_shapes]
    if len(result) != len(shapes) or any(
        g is not None and tuple(g.shape) != s for g, s in zip(result, shapes, strict=False)
    ):
        got = [None if g is None else tuple(g.shape) for g in result]
        raise RuntimeError(
            f"{type(hook).__name__}.backward returned gradients of shapes {got} for "
            f"{type(call.module).__name__}, whose hooked inputs have shapes {shapes}; return one "
            "tensor per input with its shape."
        )
    return result


def _identity(input: torch.Tensor) -> torch.Tensor:
    return input


def _stabilized_gradient_mapper(
    stabilizer: Callable[[torch.Tensor], torch.Tensor], out_grad: torch.Tensor, outputs: tuple
) -> tuple:
    return tuple(out_grad / stabilizer(output) for output in outputs)


def _default_reducer(inputs: tuple, gradients: tuple) -> torch.Tensor:
    return sum(input * gradient for input, gradient in zip(inputs, gradients, strict=False))


class BasicHook(Hook):
    """The one mechanism behind LRP rules: K modifier triples, a gradient mapper and a reducer.

    x_k = input_modifiers[k](x); y_k = output_modifiers[k](f(x_k; param_modifiers[k](θ)));
    γ = gradient_mapper(R, (y_1..y_K)); v_k = (∂y_k/∂x_k)ᵀγ_k; R_in = reducer((x_k), (v_k)).
    Defaults: identities (as many as the longest given list), R / stabilize(y_k, stabilizer)
    (``stabilizer`` a number ε or a :class:`Stabilizer`, default 1e-6; unused when a
    ``gradient_mapper`` is given) and Σ_k x_k·v_k. The true gradient of the module is never
    computed.
    """

    def __init__(
        self,
        input_modifiers: Sequence[Callable] | None = None,
        param_modifiers: Sequence[Callable | ParamMod] | None = None,
        output_modifiers: Sequence[Callable] | None = None,
        gradient_mapper: Callable | None = None,
        reducer: Callable | None = None,
        stabilizer: float | Stabilizer = 1e-6,
    ):
        super().__init__()
        given = [m for m in (input_modifiers, param_modifiers, output_modifiers) if m is not None]
        lengths = {len(m) for m in given}
        if len(lengths) > 1:
            raise ValueError(
                "input_modifiers, param_modifiers and output_modifiers must have the same "
                f"length when given, got lengths {sorted(lengths)}"
            )
        n_terms = lengths.pop() if lengths else 1
        if n_terms == 0:
            raise ValueError("modifier lists must not be empty")
        self.input_modifiers = tuple(input_modifiers or (_identity,) * n_terms)
        self.param_modifiers = tuple(
            ParamMod.ensure(m) for m in (param_modifiers or (_param_identity,) * n_terms)
        )
        self.output_modifiers = tuple(output_modifiers or (_identity,) * n_terms)
        self.gradient_mapper = gradient_mapper or partial(
            _stabilized_gradient_mapper, Stabilizer.ensure(stabilizer)
        )
        self.reducer = reducer or _default_reducer
        self._weighted_terms = (reducer is None,) * n_terms
        # with the default reducer R_in = Σ_k s_k·x_k⊙v_k with signs s_k = 1; rules whose reducer
        # is such a signed sum declare their signs, so the mechanism can sum in place
        self._term_signs = (1,) * n_terms if reducer is None else None

    @property
    def _identity_terms(self) -> tuple[bool, ...]:
        return tuple(
            i is _identity and p.is_identity and o is _identity
            for i, p, o in zip(
                self.input_modifiers, self.param_modifiers, self.output_modifiers, strict=False
            )
        )

    def copy(self) -> BasicHook:
        """A fresh, unregistered copy with the same modifiers, mapper and reducer."""
        new = object.__new__(type(self))
        new.__dict__.update(
            {k: v for k, v in self.__dict__.items() if k not in ("stored_tensors", "_calls")}
        )
        new.stored_tensors = {}
        new.active = True
        return new

    def _needs_local_graph(self, module: torch.nn.Module) -> bool:
        return any(self._identity_terms)

    def _keep(self, call: ModuleCall, outputs: list[torch.Tensor]) -> None:
        # Reusing the forward's graph for identity terms needs its outputs; keep them only when
        # they are not larger than the inputs (kept anyway), else re-running the term is cheaper
        # in memory than holding them until the backward pass.
        larger = sum(o.numel() for o in outputs) > sum(x.numel() for x in call.inputs)
        if larger or not any(self._identity_terms):
            call.leaves = call.outputs = None

    def _relevance(self, call: ModuleCall, grad_outputs: tuple) -> tuple:
        self.stored_tensors = call.stored
        self.pre_backward(call.module, grad_outputs, grad_outputs)
        return basic_relevance(self, call, grad_outputs)
