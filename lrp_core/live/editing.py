"""Editing a live explanation's rule assignment, validated against the recorded forward pass.

``AssignmentEditing`` is the part of ``LiveExplanation`` that changes which rule each module gets
(overrides, parameters, composite, configuration) and describes or exports the result. Every
change is checked with ``check_applicable`` on the shapes of the recorded forward; a change that
fails is undone, so the live explanation keeps its previous, working assignment. Every change
holds the live explanation's lock, so an explanation running in another thread sees the
assignment before or after a change, never part of one; ``transaction`` extends that to a
change and the explanation that follows it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..core import Composite, Hook
from ..op_composites import OpComposite
from . import config as config_format
from . import snippet
from .assignment import (
    EffectiveRule,
    RuleAssignment,
    check_applicable,
    composite_defaults,
    reports_fallback,
)
from .describe import describe_model
from .ops import OpAssignmentError
from .rule_registry import make_rule
from .value_checks import check_values


class AssignmentEditing:
    """Mixin of ``LiveExplanation``: assignment changes, description and export."""

    # --- assignment (validated against the recorded forward) ---
    def validate(self, assignment: RuleAssignment | None = None) -> None:
        """Raise ``RuleNotApplicableError`` naming the first module whose rule cannot apply."""
        assignment = self.assignment if assignment is None else assignment
        # a (module, rule) pair that passed on the recorded shapes passes again: check only the
        # modules whose rule changed since the last validation (explain validates every time)
        shapes, passed = getattr(self, "_passed_rules", (None, {}))
        if shapes is not self.shapes:
            passed = {}
        checked = {}
        for name, effective in assignment.effective_rules().items():
            rule = effective.rule
            if name not in passed or passed[name] is not rule:
                inputs, outputs = self.shapes.get(name, (None, None))
                module = assignment.leaves[name]
                check_applicable(rule, name, module, inputs, outputs)
                check_values(rule, name, module, self._input.dtype, inputs)
            checked[name] = rule
        self._passed_rules = (self.shapes, checked)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Changes made in the block happen all or not at all.

        The block holds the lock (no explanation in another thread starts meanwhile); on any
        exception, including ``KeyboardInterrupt``, the assignment, the composite and
        ``last_result`` are restored to what they were before the block, and it is re-raised.
        """
        self._check_open()
        with self._lock:
            assignment = self.assignment
            saved = (dict(assignment.defaults), list(assignment.overrides))
            report = assignment.report_fallback
            composite = (self.composite, self.composite_name, dict(self.composite_params))
            last_result = self.last_result
            try:
                yield
            except BaseException:
                assignment.replace(*saved, report)
                self.composite, self.composite_name, self.composite_params = composite
                self.last_result = last_result
                raise

    def _change(self, change: Callable[[], Any]) -> Any:
        if self.ops is not None:
            raise OpAssignmentError(
                "this live explanation runs an op composite: its rules are on captured "
                "operations, so change them with assign_op / set_op_params (names in "
                "live.captured); module rules and composites cannot be mixed in"
            )
        with self.transaction():
            result = change()
            self.validate()
        return result

    def assign(
        self,
        rule: Hook | str | None,
        *,
        name: str | None = None,
        type: str | type | None = None,
        within: str | None = None,
        **params: Any,
    ) -> list[str]:
        """Override the rule of module ``name``, or of the leaves of ``type`` and/or ``within``.

        ``rule`` is a rule instance, a registered rule name (with its ``params``) or None (plain
        gradient). Returns the affected module names. No forward pass runs.
        """
        if isinstance(rule, str):
            rule = make_rule(rule, params)
        elif params:
            raise TypeError(f"parameters {sorted(params)} are only accepted with a rule name")
        return self._change(
            lambda: self.assignment.assign(rule, name=name, type=type, within=within)
        )

    def set_params(self, name: str, **params: Any) -> Hook:
        """Change parameters of module ``name``'s effective rule (an override from then on)."""
        return self._change(lambda: self.assignment.set_params(name, **params))

    def remove_override(
        self, *, name: str | None = None, type: str | type | None = None, within: str | None = None
    ) -> None:
        """Remove the override with exactly this target."""
        self._change(lambda: self.assignment.remove(name=name, type=type, within=within))

    def clear_overrides(self) -> None:
        """Back to the composite's rules."""
        self._change(self.assignment.clear)

    def set_composite(
        self, composite: Composite | str | None, *, keep_overrides: bool = True, **params: Any
    ) -> None:
        """Take the default rules from another composite (its canonizers are not applied: the
        canonizers stay those given at construction). No forward pass runs."""
        with self.transaction():
            self.composite_name, self.composite_params = None, dict(params)
            new = self._resolve_composite(composite)
            if isinstance(new, OpComposite):
                raise OpAssignmentError(
                    f"composite: {type(new).__name__} captures operations in the forward pass; "
                    "start a new LiveExplanation with it"
                )
            defaults = composite_defaults(new, self.model)
            overrides = self.assignment.overrides if keep_overrides else []
            report = reports_fallback(new)
            self._change(lambda: self.assignment.replace(defaults, overrides, report))
            self.composite = new

    def rule_of(self, name: str) -> EffectiveRule:
        """Effective rule of module ``name`` with its parameters and origin."""
        return self.assignment.effective(name)

    def describe(self) -> dict:
        """JSON-serialisable tree of the model's modules (see ``lrp_core.live.describe``), with
        the captured operations of an op composite under their modules."""
        ops = None if self.ops is None else self.ops.captured()
        return describe_model(self.model, self.assignment, self.shapes, ops)

    # --- rules on captured operations (op composites, see lrp_core.live.ops) ---
    def _live_ops(self) -> Any:
        if self.ops is None:
            raise OpAssignmentError(
                "this live explanation captures no operations; start it with an op composite "
                "(AttnLRP, CPLRP or an OpComposite with signal='gradient')"
            )
        return self.ops

    @property
    def captured(self) -> list[dict[str, Any]]:
        """The captured calls of the forward pass with their current rules ([] without an op
        composite)."""
        return [] if self.ops is None else self.ops.captured()

    def assign_op(self, pattern: str, rule: Any) -> None:
        """Give the captured calls matching ``pattern`` (a call name or glob such as
        ``"*:softmax#*"``) the op ``rule`` (None: plain gradient); backward only.

        Raises ``OpAssignmentError`` naming the argument when nothing matches or the rule does
        not apply to a matched call; the assignment then stays as it was. Like every edit it
        waits for a running explanation to end (never lands inside a backward pass).
        """
        with self.transaction():
            self._live_ops().assign(pattern, rule)

    def set_op_params(self, name: str, **params: Any) -> None:
        """Change parameters of the current rule of the captured call ``name``; backward only."""
        with self.transaction():
            self._live_ops().set_params(name, **params)

    def reset_ops(self) -> None:
        """Drop every op rule override (back to the composite's rules)."""
        with self.transaction():
            self._live_ops().reset()

    def _composite_spec(self) -> tuple[str, dict[str, Any]] | None:
        return config_format.composite_spec(
            self.composite, self.composite_name, self.composite_params
        )

    def to_json(self) -> str:
        """The assignment as JSON (see ``lrp_core.live.config``)."""
        return config_format.to_json(self)

    def apply_config(self, config: str | dict) -> None:
        """Replace composite and overrides from JSON (validated first; see
        ``lrp_core.live.config``). On any error the assignment stays as it was."""
        with self.transaction():
            assignment = self.assignment
            change = config_format.read_config(config, assignment, self.model, self.canonizers)
            self._change(lambda: assignment.replace(change.defaults, change.overrides))
            self.composite = change.composite
            self.composite_name, self.composite_params = (
                (None, {}) if change.spec is None else change.spec
            )

    def to_code(self) -> str:
        """Python source building an equivalent composite (see ``lrp_core.live.snippet``)."""
        spec = self._composite_spec()
        canonizers = config_format.canonizer_set_name(self.canonizers)
        return snippet.to_code(self.assignment, spec, canonizers)

    def to_composite(self) -> Composite:
        """An equivalent composite for scripts (use on another model copy or after close)."""
        spec = self._composite_spec()
        canonizers = config_format.canonizer_set_name(self.canonizers)
        return snippet.to_composite(self.assignment, spec, canonizers)
