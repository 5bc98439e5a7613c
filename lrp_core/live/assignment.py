"""Rule assignment of a live explanation: composite defaults plus the user's overrides.

Rules go to the *leaf* modules of a model (modules without children). Each leaf's effective rule
is found in this order:

1. the last override that matches it, where an override targets one module by qualified
   ``name``, or all leaves of a ``type`` and/or all leaves ``within`` a subtree (both given: the
   leaves of that type inside that subtree);
2. else the composite's rule for it (its *default*);
3. else the plain gradient (a *fallback*).

A type key is a class name matched against the module's class and its base classes (``"Conv2d"``,
``"_ConvNd"``) or a type group of ``lrp_core.types`` written ``"types.<Group>"``
(``"types.Convolution"``). The rule ``None`` means the plain gradient.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .. import types as type_groups
from ..core import BasicHook, Composite, Hook
from ..map_composites import PLAIN_GRADIENT_TYPES
from .rule_registry import rule_label, rule_params, with_params

COMPOSITE = "composite"
OVERRIDE = "override"
FALLBACK = "fallback"
PLAIN = "gradient"
_GROUP_PREFIX = "types."


class AssignmentError(ValueError):
    """An override that names no module, or a bad combination of targets."""


class RuleNotApplicableError(AssignmentError):
    """A rule that cannot work on the module it was assigned to."""


def type_key(kind: str | type) -> str:
    """The string key of a module class or type group (``nn.Conv2d`` -> ``"Conv2d"``)."""
    if isinstance(kind, str):
        if not kind:
            raise AssignmentError("type: an empty type name matches no module")
        return kind
    if isinstance(kind, type):
        if isinstance(kind, type_groups.SubclassMeta):
            return _GROUP_PREFIX + kind.__name__
        return kind.__name__
    raise AssignmentError(f"type must be a module class or a class name, got {kind!r}")


def matches_type(module: nn.Module, key: str) -> bool:
    """Whether ``module`` is of the class or type group named by ``key`` (see the module doc)."""
    if key.startswith(_GROUP_PREFIX):
        group = getattr(type_groups, key[len(_GROUP_PREFIX) :], None)
        return isinstance(group, type) and isinstance(module, group)
    return any(cls.__name__ == key for cls in type(module).__mro__)


def _in_subtree(name: str, root: str) -> bool:
    return root == "" or name == root or name.startswith(root + ".")


@dataclass(frozen=True)
class Override:
    """One user override: ``rule`` (None: plain gradient) for the modules it targets."""

    rule: Hook | None
    name: str | None = None
    type: str | None = None
    within: str | None = None

    @property
    def key(self) -> tuple[str | None, str | None, str | None]:
        """What the override targets; a new override with the same key replaces it."""
        return (self.name, self.type, self.within)

    def matches(self, name: str, module: nn.Module) -> bool:
        """Whether the override applies to the leaf ``module`` called ``name``."""
        if self.name is not None:
            return name == self.name
        if self.within is not None and not _in_subtree(name, self.within):
            return False
        return self.type is None or matches_type(module, self.type)


@dataclass(frozen=True)
class EffectiveRule:
    """The rule a module gets, its parameters and where it came from.

    ``origin`` is ``"override"``, ``"composite"``, ``"gradient"`` (no rule, and the plain gradient
    is what the composite intends: a gradient-only composite, or a module such as max pooling or
    flatten whose gradient is already right for LRP) or ``"fallback"`` (an LRP composite has no
    rule for a module that computes something: plain gradient, worth a warning); ``override``
    is the deciding override (or None).
    """

    rule: Hook | None
    origin: str
    override: Override | None = None

    @property
    def name(self) -> str:
        """Registered name of the rule (``"Gradient"`` for the plain gradient; the class name
        for unregistered rules)."""
        return rule_label(self.rule)

    @property
    def params(self) -> dict[str, Any]:
        """The rule's constructor keywords."""
        return rule_params(self.rule)


class RuleAssignment:
    """Which rule each leaf module gets: composite defaults plus ordered overrides.

    Parameters
    ----------
    modules : dict[str, nn.Module]
        ``{qualified name: module}`` of the model (as ``named_modules()`` gives them).
    defaults : dict[str, Hook | None]
        ``{qualified name: rule template or None}``, the composite's choice per module.
    report_fallback : bool
        whether modules without a rule are fallbacks worth a warning (true for
        LRP composites) rather than intended plain gradients.
    """

    def __init__(
        self,
        modules: dict[str, nn.Module],
        defaults: dict[str, Hook | None],
        report_fallback: bool = True,
    ):
        self.report_fallback = report_fallback
        self.modules = dict(modules)
        self.leaves = {n: m for n, m in self.modules.items() if next(m.children(), None) is None}
        self.defaults = {name: defaults.get(name) for name in self.leaves}
        self.overrides: list[Override] = []
        self.version = 0
        self._effective: dict[str, EffectiveRule] = {}
        self._rebuild()

    def copy(self) -> RuleAssignment:
        """An independent assignment with the same defaults and overrides."""
        new = RuleAssignment(self.modules, self.defaults, self.report_fallback)
        new.overrides = list(self.overrides)
        new._rebuild()
        return new

    # --- queries ---
    def effective(self, name: str) -> EffectiveRule:
        """The effective rule of the leaf module ``name``; ``AssignmentError`` if there is none."""
        try:
            return self._effective[name]
        except KeyError:
            raise AssignmentError(self._unknown_name(name, "name")) from None

    def effective_rules(self) -> dict[str, EffectiveRule]:
        """The effective rule of every leaf module, by qualified name."""
        return dict(self._effective)

    def rule_for(self, name: str) -> Hook | None:
        """The effective rule of leaf ``name`` (None: plain gradient)."""
        return self._effective[name].rule

    # --- changes ---
    def assign(
        self,
        rule: Hook | None,
        *,
        name: str | None = None,
        type: str | type | None = None,
        within: str | None = None,
    ) -> list[str]:
        """Override the rule of the leaf ``name``, or of the leaves of ``type`` and/or ``within``.

        Returns the names of the leaves it applies to. Raises ``AssignmentError`` naming the
        argument when the target matches no leaf module or the arguments are combined wrongly.
        """
        override = self._make_override(rule, name, type, within)
        targets = [n for n, m in self.leaves.items() if override.matches(n, m)]
        if not targets:
            raise AssignmentError(
                f"type={override.type!r} within={override.within!r} matches no leaf module; "
                f"leaf types here: {sorted({m.__class__.__name__ for m in self.leaves.values()})}"
            )
        self.overrides = [o for o in self.overrides if o.key != override.key] + [override]
        self._rebuild()
        return targets

    def set_params(self, name: str, **changes: Any) -> Hook:
        """Change parameters of the effective rule of leaf ``name`` (becomes a name override).

        Returns the new rule. Raises ``AssignmentError`` for the plain gradient and
        ``ValueError`` naming the parameter when the rule rejects it.
        """
        current = self.effective(name)
        if current.rule is None:
            raise AssignmentError(
                f"name={name!r} has the plain gradient, which has no parameters; "
                "assign a rule first"
            )
        rule = with_params(current.rule, **changes)
        self.assign(rule, name=name)
        return rule

    def remove(
        self, *, name: str | None = None, type: str | type | None = None, within: str | None = None
    ) -> None:
        """Remove the override with exactly this target; ``AssignmentError`` if there is none."""
        key = (name, None if type is None else type_key(type), within)
        kept = [o for o in self.overrides if o.key != key]
        if len(kept) == len(self.overrides):
            raise AssignmentError(
                f"there is no override for name={key[0]!r} type={key[1]!r} within={key[2]!r}; "
                f"overrides: {[o.key for o in self.overrides]}"
            )
        self.overrides = kept
        self._rebuild()

    def clear(self) -> None:
        """Remove every override (back to the composite's defaults)."""
        self.overrides = []
        self._rebuild()

    def replace(
        self,
        defaults: dict[str, Hook | None],
        overrides: Iterable[Override],
        report_fallback: bool | None = None,
    ) -> None:
        """Set new composite defaults and overrides at once (targets are checked);
        ``report_fallback`` None keeps the current setting."""
        overrides = list(overrides)
        for override in overrides:
            self._make_override(override.rule, override.name, override.type, override.within)
        self.defaults = {name: defaults.get(name) for name in self.leaves}
        self.overrides = overrides
        if report_fallback is not None:
            self.report_fallback = report_fallback
        self._rebuild()

    # --- helpers ---
    def _default_origin(self, default: Hook | None, module: nn.Module) -> str:
        if default is not None:
            return COMPOSITE
        if self.report_fallback and not isinstance(module, PLAIN_GRADIENT_TYPES):
            return FALLBACK
        return PLAIN

    def _make_override(self, rule, name, type, within) -> Override:
        if rule is not None and not isinstance(rule, Hook):
            raise TypeError(f"rule must be a lrp_core rule (a Hook) or None, got {rule!r}")
        if name is not None:
            if type is not None or within is not None:
                raise AssignmentError("give either name, or type and/or within, not both")
            if name not in self.leaves:
                raise AssignmentError(self._unknown_name(name, "name"))
            return Override(rule, name=name)
        if type is None and within is None:
            raise AssignmentError("give the target: name=..., type=... and/or within=...")
        if within is not None and within not in self.modules:
            raise AssignmentError(self._unknown_name(within, "within"))
        return Override(rule, type=None if type is None else type_key(type), within=within)

    def _unknown_name(self, name: str, field: str) -> str:
        if name in self.modules:
            return (
                f"{field}={name!r} is a container, not a leaf module; use within={name!r} to "
                "target the leaves below it"
            )
        close = [n for n in self.modules if n and (name in n or n in name)][:5]
        return f"{field}={name!r} matches no module of the model" + (
            f"; similar names: {close}" if close else ""
        )

    def _rebuild(self) -> None:
        effective = {}
        for name, module in self.leaves.items():
            chosen = None
            for override in reversed(self.overrides):
                if override.matches(name, module):
                    chosen = EffectiveRule(override.rule, OVERRIDE, override)
                    break
            if chosen is None:
                default = self.defaults.get(name)
                chosen = EffectiveRule(default, self._default_origin(default, module))
            effective[name] = chosen
        self._effective = effective
        self.version += 1


def check_applicable(
    rule: Hook | None,
    name: str,
    module: nn.Module,
    input_shapes: list[torch.Size] | None = None,
    output_shapes: list[torch.Size] | None = None,
) -> None:
    """Raise ``RuleNotApplicableError`` naming the module if ``rule`` cannot work on it.

    A rule that modifies parameters (required ones) needs a module with parameters; a rule that
    maps the incoming relevance element-wise (Pass, ReLU rules, ...) needs outputs shaped like the
    inputs (checked when the recorded shapes are given).
    """
    if rule is None:
        return
    label = f"{type(rule).__name__} cannot apply to module {name!r} ({type(module).__name__})"
    if isinstance(rule, BasicHook):
        has_params = next(module.parameters(recurse=False), None) is not None
        for param_mod in rule.param_modifiers:
            if not param_mod.is_identity and param_mod.require_params and not has_params:
                raise RuleNotApplicableError(
                    f"{label}: the rule modifies parameters and the module has none; use a rule "
                    "for parameter-free layers (Pass, Norm, Epsilon) or the plain gradient"
                )
        return
    elementwise = not hasattr(type(rule), "backward") or type(rule).backward is Hook.backward
    if elementwise and input_shapes is not None and output_shapes is not None:
        same = len(input_shapes) == len(output_shapes) and all(
            tuple(i) == tuple(o) for i, o in zip(input_shapes, output_shapes, strict=True)
        )
        if not same:
            raise RuleNotApplicableError(
                f"{label}: the rule passes relevance element-wise, but the module maps shapes "
                f"{[tuple(s) for s in input_shapes]} to {[tuple(s) for s in output_shapes]}"
            )


# --- a composite's rules as the defaults of an assignment ---
def reports_fallback(composite: Composite | None) -> bool:
    """Whether modules this composite leaves without a rule are fallbacks worth a warning."""
    return bool(getattr(composite, "report_fallback", False))


def composite_defaults(composite: Composite | None, model) -> dict[str, Hook | None]:
    """The composite's rule template for every named module of ``model`` (None: no rule)."""
    if composite is None:
        return {}
    ctx: dict = {}
    return {name: composite.module_map(ctx, name, m) for name, m in model.named_modules()}
