"""Live explanations: one forward pass, rules that change at will, backward-only re-runs.

>>> live = LiveExplanation(model, images, EpsilonPlusFlat(canonizers=demo_canonizers()))
>>> result = live.explain(target=3)                 # relevance of class 3 for every sample
>>> live.set_params("features.0", stabilizer=1e-3)  # no forward pass
>>> result = live.explain(target=3)                 # backward only; live.forward_count == 1

The model runs forward once per input batch, with a dispatching hook on every leaf module (see
``lrp_core.live.dispatch``); each ``explain`` is one backward pass over the kept graph in which
every module takes its rule from a snapshot of the assignment made when the pass starts, and
records its relevance totals. Passes, edits and ``close()`` hold one lock, so an edit from
another thread lands between two passes, never inside one.
The composite's canonizers stay applied until ``close()`` (or the end of a ``with`` block), which
also removes every hook; the model's parameters and buffers are then as before (also after a
forward in training mode: buffers the forward changed in place are put back). A constructor that
fails at any step undoes what it did before raising.

With an op composite (``AttnLRP``, ``CPLRP``) the forward pass is captured instead, and the rules
sit on the captured functional operations (``assign_op``, ``set_op_params``; see
``lrp_core.live.ops``); each ``explain`` is still one backward pass.

(This module is longer than the project's ~400 lines: it keeps the whole lifetime of a live
explanation in one place, open, forward, explain, close, each undoing the others on failure;
editing is in ``editing.py``, the per-module backward step in ``dispatch.py``.)
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..composites import get_composite
from ..core import Composite, HookConflictError, RemovableHandleList, registered_hook
from ..op_composites import OpComposite
from .assignment import (
    FALLBACK,
    EffectiveRule,
    RuleAssignment,
    composite_defaults,
    reports_fallback,
)
from .config import CANONIZERS, parse_config, read_canonizers, read_composite
from .dispatch import DispatchHook, Superseded, TermCache, rule_relevance
from .editing import AssignmentEditing
from .forward import (
    LiveInputError,
    RuleFailedError,
    TrainingModeWarning,
    run_forward,
    warn_fallbacks,
)
from .ops import LiveOps, OpAssignmentError
from .records import LiveResult, RecordCollector
from .rule_registry import rule_label
from .targets import Target, make_seed, top_k_classes

__all__ = [
    "LiveExplanation",
    "LiveResult",
    "LiveInputError",
    "RuleFailedError",
    "TrainingModeWarning",
    "Live",
]


@dataclass
class _Pass:
    """One backward pass: its generation, the rules it uses (a snapshot of the assignment taken
    when it starts, so edits meanwhile never mix into it) and its records."""

    generation: int
    rules: dict[str, EffectiveRule]
    collector: RecordCollector


class LiveExplanation(AssignmentEditing):
    """A model, a batch of inputs and a rule assignment, explained by backward passes only.

    Parameters
    ----------
    model : nn.Module
        the network (returning one tensor ``(N, ...)``).
    inputs : torch.Tensor
        the batch, a floating point tensor of the model's dtype.
    composite : Composite | str, optional
        a composite instance, a registered composite name (with ``composite_params``)
        or None (plain gradient everywhere until rules are assigned).
    canonizers : Sequence, optional
        canonizers to apply for the lifetime (default: the composite's).
    eval_mode : bool
        put the model in eval mode meanwhile (restored on close); without it a model
        in training mode gives a ``TrainingModeWarning``.
    cache_size : int
        modified forwards kept per module call (rules; 0 disables reuse).

    Raises ``LiveInputError``/``TypeError`` for bad inputs, naming the argument; nothing stays
    applied to the model then.
    """

    def __init__(
        self,
        model: nn.Module,
        inputs: torch.Tensor,
        composite: Composite | str | None = None,
        *,
        composite_params: dict[str, Any] | None = None,
        canonizers: Sequence | None = None,
        eval_mode: bool = False,
        cache_size: int = 2,
    ):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        canonizers = _check_arguments(canonizers, cache_size)
        self.model = model
        self.composite_name: str | None = None
        self.composite_params: dict[str, Any] = dict(composite_params or {})
        self.composite = self._resolve_composite(composite)
        if canonizers is None:
            canonizers = list(getattr(self.composite, "canonizers", None) or [])
        self.canonizers = list(canonizers)
        self.forward_count = 0
        self.last_result: LiveResult | None = None
        self.shapes: dict[str, tuple[list, list]] = {}
        self._cache = TermCache(cache_size)
        self._lock = threading.RLock()
        self._generation_lock = threading.Lock()
        self._latest_generation = 0
        self._pass: _Pass | None = None
        self._handles = RemovableHandleList()
        self._canonizer_instances: list = []
        self._training: dict[nn.Module, bool] | None = None
        self._input: torch.Tensor | None = None
        self._output: torch.Tensor | None = None
        self._closed = False
        self.ops: LiveOps | None = None
        try:
            self._setup(eval_mode)
            self.set_inputs(inputs)
        except BaseException:
            self.close()
            raise

    @classmethod
    def from_config(
        cls, model: nn.Module, inputs: torch.Tensor, config: str | dict, **kwargs: Any
    ) -> LiveExplanation:
        """A new live explanation of ``model`` on ``inputs`` set up as ``config`` describes.

        Parameters
        ----------
        model : torch.nn.Module
            The network.
        inputs : torch.Tensor
            The batch.
        config : str or dict
            A configuration in the ``lrp_core.live.config`` format; its canonizer set is created
            fresh from the registered factory.
        **kwargs
            Further keywords of ``LiveExplanation`` (``eval_mode``, ``cache_size``).

        Raises
        ------
        ConfigError
            Naming the offending field; nothing stays applied to the model then.
        """
        parsed = parse_config(config)
        canonizers = read_canonizers(parsed.get("canonizers"))
        spec = read_composite(parsed.get("composite"))
        live = cls(
            model,
            inputs,
            None if spec is None else spec[0],
            composite_params=None if spec is None else spec[1],
            canonizers=[] if canonizers is None else CANONIZERS[canonizers].factory(),
            **kwargs,
        )
        try:
            if live.ops is None:
                live.apply_config(parsed)
            elif parsed.get("overrides"):
                raise OpAssignmentError(
                    "overrides: module rule overrides do not apply to an op composite"
                )
            else:
                live.ops.read_overrides(parsed.get("op_overrides", []))
        except BaseException:
            live.close()
            raise
        return live

    # --- lifetime ---
    def _resolve_composite(self, composite: Composite | str | None) -> Composite | None:
        if isinstance(composite, str):
            self.composite_name = composite
            try:
                return get_composite(composite)(**self.composite_params)
            except TypeError as error:
                raise ValueError(f"composite_params for {composite!r}: {error}") from None
        if composite is not None and not callable(getattr(composite, "module_map", None)):
            raise TypeError(f"composite must be a lrp_core Composite or a name, got {composite!r}")
        return composite

    def _setup(self, eval_mode: bool) -> None:
        model = self.model
        if any(isinstance(registered_hook(m), DispatchHook) for m in model.modules()):
            raise HookConflictError(
                f"this {type(model).__name__} is already being explained live (by another "
                "LiveExplanation, Explorer or Compare on the same model object); close that one "
                "first (.close()), or pass a separate instance of the model"
            )
        if eval_mode:
            self._training = {m: m.training for m in model.modules()}
            model.eval()
        elif model.training:
            warnings.warn(
                f"model ({type(model).__name__}) is in training mode, so dropout and batch norm "
                "act as in training; call model.eval() or pass eval_mode=True",
                TrainingModeWarning,
                stacklevel=3,
            )
        for canonizer in self.canonizers:
            self._canonizer_instances.extend(canonizer.apply(model))
        if isinstance(self.composite, OpComposite):
            self.ops = LiveOps(self.composite, model, self._op_relevance)
            self._handles.append(self.ops)
        modules = dict(model.named_modules())
        self.assignment = RuleAssignment(
            modules, composite_defaults(self.composite, model), reports_fallback(self.composite)
        )
        self._report_fallbacks()
        for name, module in self.assignment.leaves.items():
            if self.ops is None:  # with an op composite, the captured calls carry the rules
                self._handles.append(DispatchHook(name, self._module_relevance).register(module))
        self._handles.append(model.register_forward_hook(self._count_forward))

    def _report_fallbacks(self) -> None:
        """Warn once, as the composite would, about modules left with the plain gradient."""
        composite = self.composite
        if not getattr(composite, "report_fallback", False):
            return
        leaves = self.assignment.leaves
        names = [
            f"{name or '<root>'} ({type(leaves[name]).__name__})"
            for name, effective in self.assignment.effective_rules().items()
            if effective.origin == FALLBACK
        ]
        if names:
            warn_fallbacks(type(composite).__name__, names)

    def _count_forward(self, module: nn.Module, args: Any, output: Any) -> None:
        self.forward_count += 1

    def close(self) -> None:
        """Remove every hook, undo the canonizers, restore training flags; free the graph."""
        with self._lock:  # never in the middle of an explanation of another thread
            if self._closed:
                return
            self._closed = True
            try:
                self._handles.remove()
            finally:
                self._cache.clear()
                self._input = self._output = None
                self._undo_canonizers()
                for module, training in (self._training or {}).items():
                    module.train(training)

    def _undo_canonizers(self) -> None:
        """Remove the canonizer instances, last applied first; every one is tried."""
        instances, self._canonizer_instances = self._canonizer_instances, []
        first: BaseException | None = None
        for instance in reversed(instances):
            try:
                instance.remove()
            except BaseException as error:  # noqa: BLE001 - re-raised after the others
                first = first or error
        if first is not None:
            raise first

    def __enter__(self) -> LiveExplanation:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this live explanation was closed; create a new one")

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called (then every method but ``close`` raises)."""
        return self._closed

    # --- inputs and the one forward pass ---
    def set_inputs(self, inputs: torch.Tensor) -> None:
        """Run the forward pass for a new batch (the only call that runs the model).

        Raises ``TypeError``/``LiveInputError`` naming ``inputs``; the previous batch then stays.
        """
        self._check_open()
        with self._lock:
            self._check_open()
            previous = None if self.ops is None else self.ops.begin_forward()
            try:
                x, output, shapes = run_forward(self.model, inputs)
            except BaseException:
                if self.ops is not None:
                    self.ops.restore(previous)
                raise
            self._cache.clear()
            self._input, self._output, self.shapes = x, output, shapes
            self.last_result = None

    @property
    def inputs(self) -> torch.Tensor:
        """The current batch (detached)."""
        self._check_open()
        return self._input.detach()

    @property
    def output(self) -> torch.Tensor:
        """The model output of the current batch (detached)."""
        self._check_open()
        return self._output.detach()

    # --- the backward side ---
    def _module_relevance(self, name: str, call, grad_outputs: tuple) -> tuple:
        state = self._pass
        if state is None:  # a backward pass not started by us: plain gradient
            return rule_relevance(None, call, grad_outputs, self._cache)
        if state.generation < self._latest_generation:
            raise Superseded()
        rule = state.rules[name].rule
        try:
            result = rule_relevance(rule, call, grad_outputs, self._cache)
        except Superseded:
            raise
        except Exception as error:
            raise RuleFailedError(
                f"rule {rule_label(rule)} failed on module {name!r} ({type(call.module).__name__}):"
                f" {type(error).__name__}: {error}"
            ) from error
        state.collector.add(name, call.module, rule_label(rule), grad_outputs, result)
        return result

    def _op_relevance(self, call, rule, entering: tuple, leaving: tuple) -> None:
        """Record one captured call's relevance in the running pass (see ``lrp_core.live.ops``)."""
        state = self._pass
        if state is None:
            return
        if state.generation < self._latest_generation:
            raise Superseded()
        label = "Gradient" if rule is None else type(rule).__name__
        state.collector.add_products(call.name, call.op, label, entering, leaving)

    def request(self) -> int:
        """A new generation number; every computation with an older one is dropped or stopped."""
        with self._generation_lock:
            self._latest_generation += 1
            return self._latest_generation

    @property
    def latest_generation(self) -> int:
        """The newest generation number handed out."""
        return self._latest_generation

    def explain(
        self,
        target: Target = None,
        *,
        assignment: RuleAssignment | None = None,
        keep_tensors: bool | Iterable[str] = False,
        generation: int | None = None,
    ) -> LiveResult | None:
        """Relevance of ``target`` (see ``lrp_core.live.targets``) under ``assignment`` (default:
        the live one), by one backward pass. No forward pass runs.

        ``keep_tensors``: True, or module names whose relevance tensors the records keep.
        ``generation``: from ``request()``; the result is None (and ``last_result`` unchanged)
        when a newer generation was requested before it finished.
        Raises ``TargetError`` naming ``target``, ``RuleNotApplicableError``/``RuleFailedError``
        naming the module; ``last_result`` then stays as it was.
        """
        self._check_open()
        if generation is None:
            generation = self.request()
        with self._lock:
            self._check_open()  # closed by another thread while this one waited
            if generation < self._latest_generation:
                return None
            assignment = self.assignment if assignment is None else assignment
            self.validate(assignment)
            seed, classes = make_seed(target, self._output)
            names = None if isinstance(keep_tensors, bool) else set(keep_tensors)
            keep = (lambda n: keep_tensors) if names is None else names.__contains__
            rules = assignment.effective_rules()
            state = _Pass(generation, rules, RecordCollector(keep))
            start = time.perf_counter()
            self._pass = state
            try:
                (relevance,) = torch.autograd.grad(
                    self._output, self._input, seed, retain_graph=True, allow_unused=True
                )
            except Superseded:
                return None
            finally:
                self._pass = None
            if generation < self._latest_generation:
                return None
            if relevance is None:
                relevance = torch.zeros_like(self._input)
            result = LiveResult(
                relevance=relevance,
                output=self._output.detach(),
                seed=seed,
                classes=classes,
                records=dict(reversed(state.collector.records.items())),
                generation=generation,
                seconds=time.perf_counter() - start,
                rules={n: e.name for n, e in rules.items()},
            )
            if assignment is self.assignment and (
                self.last_result is None or generation >= self.last_result.generation
            ):
                self.last_result = result
            return result

    def explain_top_k(self, k: int, **kwargs: Any) -> list[LiveResult | None]:
        """One result per rank r < k: each sample's r-th highest scoring class."""
        classes = top_k_classes(self.output, k)
        return [self.explain(classes[:, r].tolist(), **kwargs) for r in range(k)]

    def explain_grid(
        self, targets: Sequence[Target], assignments: Sequence[RuleAssignment | None]
    ) -> list[list[LiveResult | None]]:
        """Results for every (assignment, target) pair, rows by assignment, on the one forward."""
        generation = self.request()
        return [
            [self.explain(t, assignment=a, generation=generation) for t in targets]
            for a in assignments
        ]


def _check_arguments(canonizers: Sequence | None, cache_size: int) -> list | None:
    """``canonizers`` as a list (or None); raises ``TypeError`` naming the argument, before
    anything touches the model."""
    if canonizers is not None:
        if isinstance(canonizers, str) or not isinstance(canonizers, Iterable):
            raise TypeError(f"canonizers must be a list of canonizers, got {canonizers!r}")
        canonizers = list(canonizers)
        for canonizer in canonizers:
            if not callable(getattr(canonizer, "apply", None)):
                raise TypeError(
                    "canonizers: every element must be a canonizer with apply(model) (see "
                    f"lrp_core.canonizers), got {type(canonizer).__name__}"
                )
    if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
        raise TypeError(f"cache_size must be an int >= 0, got {cache_size!r}")
    return canonizers


Live = LiveExplanation
live_from_config = LiveExplanation.from_config
