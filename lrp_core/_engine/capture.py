"""Capture of functional operations during the forward pass of a model with op rules.

A ``CaptureSession`` hooks a model so that, during each forward pass of its root module, a
``TorchFunctionMode`` sees every call of the operations in ``operations._TABLE``. A call whose
operands carry relevance gets a stable name from its enclosing module and its order within it
(``"layers.0.self_attn:matmul#1"``) and is run through the rule the session's ``resolve`` gives
for it (or plainly). Modules with a module rule are run as one unit (nothing inside them is
captured) and joined to their input by that rule.

Within the forward, the model's parameters are frozen (``requires_grad`` off, restored after),
so exactly the tensors that depend on the explained input carry relevance.

``signal`` says what the backward pass carries between rules:

- ``"gradient"``: a modified gradient ``g`` with ``R = x ⊙ g`` everywhere (AttnLRP's gradient ×
  input form): the root module's inputs turn ``g`` into relevance, its outputs turn the incoming
  relevance into ``g``, so attributors see relevance as usual; uncaptured linear operations
  (views, scalings, rotary embeddings, masks) then follow the z-rule without any rule of their own.
- ``"relevance"``: relevance, as with module rules; each captured call with a rule converts at
  its own inputs and outputs.

Everything is undone by ``remove()`` and after each forward, also when the forward raises: no
mode stays active, every parameter keeps its ``requires_grad``.
"""

from __future__ import annotations

import weakref
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_unflatten

from .functions import from_relevance, to_relevance
from .operations import OpCall, carries, spec_of

#: attribute set on the outputs of captured element-wise activations (CP-LRP finds gates by it)
ACTIVATION_TAG = "_lrp_core_activation_output"


class _Mode(TorchFunctionMode):
    def __init__(self, session: CaptureSession):
        super().__init__()
        self.session = session

    def __torch_function__(self, func, types, args=(), kwargs=None):
        return self.session.dispatch(func, args, kwargs or {})


class CaptureConflictError(RuntimeError):
    """The model's forward is already captured by another composite or live explanation."""


#: models whose forward a session captures now (one session per model at a time)
_CAPTURED: weakref.WeakSet = weakref.WeakSet()


def _float_tensor(obj: Any) -> bool:
    return isinstance(obj, torch.Tensor) and obj.is_floating_point()


def _map_tensors(obj: Any, fn: Callable, select: Callable[[Any], bool]) -> Any:
    flat, spec = tree_flatten(obj)
    return tree_unflatten([fn(t) if select(t) else t for t in flat], spec)


def _converted(tensor: torch.Tensor) -> torch.Tensor:
    """``to_relevance(tensor)``, keeping its activation tag."""
    converted = to_relevance(tensor)
    if getattr(tensor, ACTIVATION_TAG, False):
        setattr(converted, ACTIVATION_TAG, True)
    return converted


def _tag_activation(output: Any) -> None:
    for tensor in tree_flatten(output)[0]:
        if isinstance(tensor, torch.Tensor):
            setattr(tensor, ACTIVATION_TAG, True)


class CaptureSession:
    """Captures the functional operations of ``model``'s forward passes (see module docstring).

    Parameters
    ----------
    model:
        The root module; its forward passes are captured.
    resolve:
        ``resolve(call)`` returns the op rule for an ``OpCall`` (None: plain).
    module_rules:
        Qualified module name -> op rule applied to that module as one element-wise unit.
    signal:
        ``"gradient"`` or ``"relevance"`` (see module docstring).
    probe:
        Optional ``probe(call, inputs, output) -> (inputs, output)`` wrapping each captured call
        (used by the conservation report).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        resolve: Callable[[OpCall], Any],
        module_rules: dict[str, Any] | None = None,
        signal: str = "gradient",
        probe: Callable | None = None,
    ) -> None:
        if signal not in ("gradient", "relevance"):
            raise ValueError(f"signal must be 'gradient' or 'relevance', got {signal!r}")
        self.model, self.resolve, self.signal, self.probe = model, resolve, signal, probe
        self.module_rules = dict(module_rules or {})
        self.handles: list = []
        self._claimed = False
        self.calls: dict[str, tuple[str, str]] = {}  # name -> (op, module), of the last forward
        self._mode: _Mode | None = None
        self._stack: list[str] = []
        self._counts: defaultdict = defaultdict(int)
        self._suppressed = 0
        self._frozen: list[tuple[torch.nn.Parameter, bool]] = []
        self._pending: dict[int, list] = {}

    # --- registration ---
    def register(self) -> None:
        """Hook the model (root hooks, one name hook pair per module, module rules)."""
        model = self.model
        if model in _CAPTURED:
            raise CaptureConflictError(
                f"this {type(model).__name__} is already captured by an op composite or a live "
                "explanation (AttnLRP, CPLRP, ...); remove or close that one first, or pass a "
                "separate instance of the model"
            )
        _CAPTURED.add(model)
        self._claimed = True
        self.handles.append(model.register_forward_pre_hook(self._enter, with_kwargs=True))
        for name, module in model.named_modules():
            rule = self.module_rules.get(name)
            pre = partial(self._push, name, rule)
            post = partial(self._pop, name, rule)
            self.handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))
            self.handles.append(
                module.register_forward_hook(post, with_kwargs=True, always_call=True)
            )
        self.handles.append(
            model.register_forward_hook(self._exit, with_kwargs=True, always_call=True)
        )

    def remove(self) -> None:
        """Remove every hook and undo an unfinished forward (mode, frozen parameters)."""
        for handle in self.handles:
            handle.remove()
        self.handles = []
        if self._claimed:
            _CAPTURED.discard(self.model)
            self._claimed = False
        self._leave()

    # --- root ---
    def _enter(self, module, args, kwargs):
        if self._mode is not None or not torch.is_grad_enabled():
            return None
        self._counts.clear()
        self._stack.clear()
        self._pending.clear()
        self._suppressed = 0
        self.calls = {}
        self._frozen = [(p, p.requires_grad) for p in module.parameters()]
        for parameter, _ in self._frozen:
            parameter.requires_grad_(False)
        self._mode = _Mode(self)
        self._mode.__enter__()
        if self.signal != "gradient":
            return None
        return _map_tensors((args, kwargs), to_relevance, carries)

    def _exit(self, module, args, kwargs, output):
        if self._mode is None:
            return None
        self._leave()
        if self.signal != "gradient" or output is None:
            return None
        return _map_tensors(output, from_relevance, carries)

    def _leave(self) -> None:
        mode, self._mode = self._mode, None
        try:
            if mode is not None:
                mode.__exit__(None, None, None)
        finally:
            frozen, self._frozen = self._frozen, []
            for parameter, requires_grad in frozen:
                parameter.requires_grad_(requires_grad)
            self._stack.clear()
            self._pending.clear()
            self._suppressed = 0

    # --- module names and module rules ---
    def _push(self, name: str, rule: Any, module, args, kwargs):
        if self._mode is None:
            return None
        self._stack.append(name)
        if rule is None or self._suppressed:
            return None
        inputs = [t for t in tree_flatten((args, kwargs))[0] if carries(t)]
        if len(inputs) != 1:
            return None
        self._suppressed += 1
        self._pending[id(module)] = inputs
        return _map_tensors((args, kwargs), torch.Tensor.detach, carries)

    def _pop(self, name: str, rule: Any, module, args, kwargs, output):
        if self._mode is None:
            return None
        if self._stack and self._stack[-1] == name:
            self._stack.pop()
        inputs = self._pending.pop(id(module), None)
        if inputs is None:
            return None
        self._suppressed -= 1
        if output is None:
            return None
        call = OpCall(f"{name}:module#0", "module", name, module, None, (inputs[0],), {}, inputs)
        self.calls[call.name] = ("module", name)
        output = _map_tensors(
            output, lambda y: self._apply_module_rule(rule, call, y), _float_tensor
        )
        if getattr(rule, "marks_activation", False):
            _tag_activation(output)
        return output

    def _apply_module_rule(self, rule: Any, call: OpCall, output: torch.Tensor) -> torch.Tensor:
        (input,) = call.operands
        if self.signal == "relevance":
            input = to_relevance(input)
        result = rule.join(input, output)
        return from_relevance(result) if self.signal == "relevance" else result

    # --- operations ---
    def dispatch(self, func: Any, args: tuple, kwargs: dict) -> Any:
        """Run one torch function call seen by the mode, capturing it if it qualifies."""
        spec = spec_of(func)
        if spec is None or self._suppressed:
            return func(*args, **kwargs)
        operands = spec.operands(args, kwargs)
        if operands is None or not any(carries(t) for t in operands):
            return func(*args, **kwargs)
        module = self._stack[-1] if self._stack else ""
        index = self._counts[(module, spec.op)]
        self._counts[(module, spec.op)] = index + 1
        name = f"{module}:{spec.op}#{index}"
        self.calls[name] = (spec.op, module)
        call = OpCall(name, spec.op, module, func, spec, args, kwargs, list(operands))
        call.reenter = self._reentered
        rule = self.resolve(call)
        if rule is None and self.probe is None:
            output = func(*args, **kwargs)
        else:
            output = self._run(call, rule)
        if spec.op == "activation":
            _tag_activation(output)
        return output

    @contextmanager
    def _reentered(self) -> Iterator[None]:
        """Capture again inside a captured call (its pieces are named under the same module)."""
        mode = _Mode(self)
        mode.__enter__()
        try:
            yield
        finally:
            mode.__exit__(None, None, None)

    def _run(self, call: OpCall, rule: Any) -> Any:
        relevance = self.signal == "relevance" and rule is not None
        if relevance:
            call.operands = [_converted(t) if carries(t) else t for t in call.operands]
        if self.probe is not None:
            call.operands = self.probe.inputs(call, call.operands)
        output = call.run() if rule is None else rule.apply(call)
        if relevance:
            output = _map_tensors(output, from_relevance, carries)
        if self.probe is not None:
            output = _map_tensors(output, partial(self.probe.output, call), carries)
        return output
