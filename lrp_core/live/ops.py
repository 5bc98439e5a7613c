"""Captured functional operations in a live explanation (``AttnLRP``, ``CPLRP``, ``OpComposite``).

With an op composite, the one forward pass of a live explanation is captured (see
``lrp_core.op_composites``): every call of a captured operation gets its name
(``"layers.0.self_attn:matmul#1"``) and is run so that the backward pass asks for its *current*
op rule (``lrp_core._engine``'s ``deferred_call``). Changing the rule of a captured call is then a
backward pass only, as for a module rule:

>>> live = LiveExplanation(model, embeddings, AttnLRP())
>>> live.assign_op("*:softmax#*", SoftmaxConstant())      # every softmax, no forward pass
>>> live.set_op_params("layers.0.self_attn:matmul#0", epsilon=1e-3)
>>> result = live.explain(target=5)                        # result.records lists each call

Defaults come from the composite (``rule_for``); overrides are kept by call name (a name or a
glob over names; the latest matching override wins). Structural rules (``MultiheadAttentionSplit``,
which re-enters torch's fused attention so its pieces are captured) and the composite's rules on
whole modules (hand-written RMSNorm / GELU modules) are fixed for the lifetime.

The relevance between rules travels as gradient × input (the composites' ``signal="gradient"``);
the live explanation converts at module rules and in the records (see ``LiveExplanation``).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any

from torch import nn

from .. import attention_rules, op_rules
from .._engine import CaptureSession, OpCall, deferred_call
from ..op_composites import OpComposite, module_rules_of
from ..op_rules import OpRule

__all__ = ["LiveOps", "OpAssignmentError"]


class OpAssignmentError(ValueError):
    """An op rule assignment that cannot apply (unknown call, wrong rule, bad parameter)."""


class LiveOps:
    """The captured calls of a live explanation and their current op rules.

    Parameters
    ----------
    composite:
        The op composite giving the default rules (its ``signal`` must be ``"gradient"``).
    model:
        The explained model.
    report:
        ``report(call, rule, entering, leaving)`` after each backward through a call.
    """

    def __init__(self, composite: OpComposite, model: nn.Module, report: Callable) -> None:
        if composite.signal != "gradient":
            raise ValueError(
                "composite: a live explanation runs op composites with signal='gradient' "
                "(AttnLRP, CPLRP, or OpComposite(..., signal='gradient'))"
            )
        self.composite = composite
        self.report = report
        self.overrides: list[tuple[str, OpRule | None]] = []
        self.calls: dict[str, tuple[str, str]] = {}
        self._defaults: dict[str, OpRule | None] = {}
        self._chosen: dict[str, OpRule | None] = {}
        self.session = CaptureSession(
            model, self._resolve, module_rules_of(composite, model), signal="gradient"
        )
        self.session.register()

    def remove(self) -> None:
        """Stop capturing (hooks removed, nothing left active)."""
        self.session.remove()

    # --- forward side ---
    def _resolve(self, call: OpCall) -> OpRule | _Deferring:
        template = self.composite.rule_for(call.name, call.op, call.module)
        if getattr(template, "structural", False):
            return template
        self.calls[call.name] = (call.op, call.module)
        self._defaults[call.name] = None if template is None else template.copy()
        return _Deferring(self)

    def begin_forward(self) -> tuple:
        """Forget the calls of the previous forward pass (before each new batch); returns them
        for ``restore`` (when the new forward pass fails)."""
        previous = (self.calls, self._defaults)
        self.calls, self._defaults, self._chosen = {}, {}, {}
        return previous

    def restore(self, previous: tuple) -> None:
        """Bring back the calls ``begin_forward`` returned."""
        self.calls, self._defaults = previous
        self._chosen = {}

    # --- rules ---
    def rule(self, name: str) -> OpRule | None:
        """The current rule of the call ``name`` (None: plain gradient)."""
        if name in self._chosen:
            return self._chosen[name]
        rule = self._defaults.get(name)
        for pattern, override in self.overrides:
            if fnmatch.fnmatchcase(name, pattern):
                rule = override
        self._chosen[name] = rule
        return rule

    def origin(self, name: str) -> str:
        """``"override"`` or ``"composite"``: where the call's current rule comes from."""
        return (
            "override"
            if any(fnmatch.fnmatchcase(name, p) for p, _ in self.overrides)
            else "composite"
        )

    def assign(self, pattern: str, rule: OpRule | None) -> None:
        """Give every captured call matching ``pattern`` (a name or glob) ``rule`` (None: the
        plain gradient)."""
        matched = self.matching(pattern)
        if rule is not None:
            if not isinstance(rule, OpRule):
                raise OpAssignmentError(
                    f"rule: expected an op rule (lrp_core.op_rules) or None, got {rule!r}"
                )
            wrong = [n for n in matched if self.calls[n][0] not in rule.ops]
            if wrong:
                raise OpAssignmentError(
                    f"rule: {type(rule).__name__} applies to {list(rule.ops)}, not to "
                    f"{wrong[0]!r} ({self.calls[wrong[0]][0]}); narrow the pattern"
                )
        self.overrides.append((pattern, rule))
        self._chosen = {}

    def set_params(self, name: str, **params: Any) -> None:
        """Give the call ``name`` its current rule with ``params`` changed."""
        if name not in self.calls:
            raise OpAssignmentError(f"name: no captured call {name!r}; see live.captured")
        rule = self.rule(name)
        if rule is None:
            raise OpAssignmentError(f"name: {name!r} has the plain gradient, no parameters")
        known = rule.hyperparameters()
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise OpAssignmentError(
                f"{unknown[0]}: {type(rule).__name__} has parameters {sorted(known)}"
            )
        try:
            changed = type(rule)(**{**known, **params})
        except (TypeError, ValueError) as error:
            raise OpAssignmentError(f"{type(rule).__name__}: {error}") from None
        self.assign(name, changed)

    def reset(self) -> None:
        """Drop every override (back to the composite's rules)."""
        self.overrides = []
        self._chosen = {}

    def matching(self, pattern: str) -> list[str]:
        """The captured call names that ``pattern`` selects; raises if there is none."""
        if not isinstance(pattern, str):
            raise OpAssignmentError(f"pattern: expected a call name or glob, got {pattern!r}")
        names = [n for n in self.calls if fnmatch.fnmatchcase(n, pattern)]
        if not names:
            raise OpAssignmentError(
                f"pattern: {pattern!r} matches no captured call; names look like "
                f"{next(iter(self.calls), 'module:op#0')!r} (see live.captured)"
            )
        return names

    def overrides_config(self) -> list[dict[str, Any]]:
        """The overrides as JSON-friendly entries ``{"pattern", "rule", "params"}`` (rule None:
        plain gradient)."""
        return [
            {
                "pattern": pattern,
                "rule": None if rule is None else type(rule).__name__,
                "params": {} if rule is None else rule.hyperparameters(),
            }
            for pattern, rule in self.overrides
        ]

    def read_overrides(self, entries: Any) -> None:
        """Assign the overrides ``overrides_config`` wrote; raises ``OpAssignmentError`` naming
        the entry (the overrides are then as before)."""
        if not isinstance(entries, list):
            raise OpAssignmentError(f"op_overrides: expected a list, got {entries!r}")
        saved = list(self.overrides)
        try:
            for index, entry in enumerate(entries):
                self.assign(entry.get("pattern"), _op_rule(entry, f"op_overrides[{index}]"))
        except BaseException:
            self.overrides, self._chosen = saved, {}
            raise

    def captured(self) -> list[dict[str, Any]]:
        """Every captured call of the forward pass: name, op, module, rule, params, origin."""
        rows = []
        for name, (op, module) in self.calls.items():
            rule = self.rule(name)
            rows.append(
                {
                    "name": name,
                    "op": op,
                    "module": module,
                    "rule": "Gradient" if rule is None else type(rule).__name__,
                    "params": {} if rule is None else rule.hyperparameters(),
                    "origin": self.origin(name),
                }
            )
        return rows


def _op_rule(entry: Any, where: str) -> OpRule | None:
    """The op rule an ``op_overrides`` entry names, made with its parameters."""
    if not isinstance(entry, dict) or "rule" not in entry:
        raise OpAssignmentError(f"{where}: expected {{'pattern', 'rule', 'params'}}, got {entry!r}")
    if entry["rule"] is None:
        return None
    classes = {
        name: getattr(module, name)
        for module in (op_rules, attention_rules)
        for name in module.__all__
        if isinstance(getattr(module, name), type) and issubclass(getattr(module, name), OpRule)
    }
    cls = classes.get(entry["rule"])
    if cls is None:
        raise OpAssignmentError(
            f"{where}.rule: unknown op rule {entry['rule']!r}; known: {sorted(classes)}"
        )
    try:
        return cls(**entry.get("params", {}))
    except (TypeError, ValueError) as error:
        raise OpAssignmentError(f"{where}.params: {error}") from None


class _Deferring(OpRule):
    """The op rule the capture gets in a live forward: defers the choice to the backward."""

    def __init__(self, ops: LiveOps) -> None:
        self.live_ops = ops

    def apply(self, call: OpCall) -> Any:
        return deferred_call(call, self.live_ops.rule, self.live_ops.report)
