"""Composites with rules on captured functional operations, and the AttnLRP/CP-LRP presets.

``OpComposite`` maps captured operation calls to op rules (:mod:`lrp_core.op_rules`). Entries of
``op_map`` are ``(selector, rule)`` pairs, read in order, the first match whose rule applies to
the operation type wins. A selector is an ``Op`` or a string: an operation type (``"matmul"``) or,
if it contains ``":"``, a call name or glob pattern (``"layers.0.self_attn:matmul#1"``,
``"*:softmax#*"``). ``module_rules`` puts an op rule on whole modules (key: a module type, a
tuple of types, or a glob of the class name such as ``"*RMSNorm"``); nothing inside such a
module is captured.

Call names are ``<module>:<op>#<k>``: the qualified name of the innermost enclosing module (``""``
for the root), the operation type, and its order among the same type in that module during one
forward pass.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from ._engine import OP_TYPES, CaptureConflictError, CaptureSession, OpCall
from .attention_rules import AttentionCP, AttentionUniform, MultiheadAttentionSplit
from .composites import register_composite
from .core import Composite
from .op_rules import (
    ActivationIdentity,
    BilinearUniform,
    ElementwiseIdentity,
    LinearEpsilon,
    LinearGamma,
    NormIdentity,
    OpPass,
    OpRule,
    ProductGateStop,
    ProductUniform,
    ResidualEpsilon,
    SoftmaxConstant,
    SoftmaxDeepTaylor,
)

__all__ = [
    "AttnLRP",
    "CPLRP",
    "CaptureConflictError",
    "Op",
    "OpComposite",
    "captured_tree",
    "module_rules_of",
]


@dataclass(frozen=True)
class Op:
    """Selects captured calls by operation ``type``, by call ``name`` (a glob pattern) and/or
    by module subtree ``within`` (a qualified module name: that module and its descendants)."""

    type: str | None = None
    name: str | None = None
    within: str | None = None

    def __post_init__(self) -> None:
        if self.type is not None and self.type not in OP_TYPES:
            raise ValueError(f"Op: unknown operation type {self.type!r}; known: {list(OP_TYPES)}")

    def matches(self, name: str, op: str, module: str) -> bool:
        """Whether the call ``name`` of type ``op`` inside ``module`` is selected."""
        if self.type is not None and op != self.type:
            return False
        if self.name is not None and not fnmatch.fnmatchcase(name, self.name):
            return False
        if self.within:
            return module == self.within or module.startswith(self.within + ".")
        return True

    @classmethod
    def ensure(cls, selector: Any) -> Op:
        """An ``Op`` from a selector (``Op``, operation type, or call name/pattern with ``:``)."""
        if isinstance(selector, Op):
            return selector
        if isinstance(selector, str):
            return cls(name=selector) if ":" in selector else cls(type=selector)
        raise TypeError(
            f"op selector must be an Op or a string (an operation type such as 'matmul', or a "
            f"call name such as 'layers.0:add#0'), got {selector!r}"
        )


def _checked_op_map(op_map: Sequence) -> list[tuple[Op, OpRule]]:
    checked = []
    for entry in op_map or ():
        if not (isinstance(entry, tuple | list) and len(entry) == 2):
            raise TypeError(f"op_map entries must be (selector, op rule) pairs, got {entry!r}")
        selector, rule = entry
        if not isinstance(rule, OpRule):
            raise TypeError(f"op_map: expected an op rule (lrp_core.op_rules), got {rule!r}")
        checked.append((Op.ensure(selector), rule))
    return checked


def _module_matches(key: Any, module: nn.Module) -> bool:
    if isinstance(key, str):
        return fnmatch.fnmatchcase(type(module).__name__, key)
    return isinstance(module, key)


class OpComposite(Composite):
    """Rules on captured operations (see the module docstring), optionally with a composite of
    module rules registered alongside.

    Parameters
    ----------
    op_map:
        ``[(selector, op rule), ...]``.
    module_rules:
        ``[(type, tuple of types or class-name glob, op rule), ...]`` for whole modules.
    composite:
        A composite of module rules (e.g. ``EpsilonPlusFlat()``), registered with this one;
        only with ``signal="relevance"``.
    signal:
        ``"relevance"`` (default; each captured rule converts on its own, so module rules work
        as usual) or ``"gradient"`` (gradient × input across the whole model: linear operations
        without a rule follow the z-rule; no module hooks).
    canonizers:
        Applied before registering, as for every composite.

    After a forward pass, ``captured`` lists the captured calls (name, op, module, rule) and
    ``op_rules`` maps call names to the registered rule copies.
    """

    #: registered in ``composites.OP_COMPOSITES``, apart from the module-rule composites
    captures_operations = True

    def __init__(
        self,
        op_map: Sequence = (),
        module_rules: Sequence = (),
        composite: Composite | None = None,
        signal: str = "relevance",
        canonizers: Sequence | None = None,
    ) -> None:
        super().__init__(canonizers=canonizers)
        if signal not in ("relevance", "gradient"):
            raise ValueError(f"signal must be 'relevance' or 'gradient', got {signal!r}")
        if composite is not None and signal == "gradient":
            raise ValueError(
                "composite: module rules carry relevance, so they need signal='relevance'"
            )
        self.op_map = _checked_op_map(op_map)
        self.module_rules = list(module_rules or ())
        self.composite = composite
        self.signal = signal
        self.op_rules: dict[str, OpRule] = {}
        self.session: CaptureSession | None = None
        self.probe: Any = None

    def rule_for(self, name: str, op: str, module: str) -> OpRule | None:
        """The rule template the call ``name`` of type ``op`` in ``module`` gets (or None)."""
        for selector, rule in self.op_map:
            if op in rule.ops and selector.matches(name, op, module):
                return rule
        return None

    def _resolve(self, call: OpCall) -> OpRule | None:
        rule = self.op_rules.get(call.name)
        if rule is None and call.name not in self.op_rules:
            template = self.rule_for(call.name, call.op, call.module)
            rule = None if template is None else template.copy()
            self.op_rules[call.name] = rule
        return rule

    def register(self, module: nn.Module) -> None:
        """Apply canonizers, register the module composite, then capture ``module``'s forward."""
        super().register(module)
        try:
            if self.composite is not None:
                self.composite.register(module)
            self.session = CaptureSession(
                module, self._resolve, module_rules_of(self, module), self.signal, self.probe
            )
            self.session.register()
        except BaseException:
            self.remove()
            raise

    def remove(self) -> None:
        """Stop capturing, remove the module composite's hooks, undo the canonizers."""
        try:
            if self.session is not None:
                self.session.remove()
            if self.composite is not None:
                self.composite.remove()
        finally:
            self.session = None
            self.op_rules = {}
            super().remove()

    @property
    def captured(self) -> list[dict[str, Any]]:
        """The calls captured in the last forward pass: name, op, module and rule name."""
        if self.session is None:
            return []
        return [
            {"name": name, "op": op, "module": module, "rule": _rule_label(self.op_rules.get(name))}
            for name, (op, module) in self.session.calls.items()
        ]


def module_rules_of(composite: OpComposite, model: nn.Module) -> dict[str, OpRule]:
    """Qualified module name -> a copy of the op rule ``composite`` puts on that whole module."""
    rules = {}
    for name, child in model.named_modules():
        rule = next((r for k, r in composite.module_rules if _module_matches(k, child)), None)
        if rule is not None:
            rules[name] = rule.copy()
    return rules


def _rule_label(rule: OpRule | None) -> str:
    return "Gradient" if rule is None else type(rule).__name__


#: modules whose forward is a hand-written RMS norm or activation (class-name globs)
NORM_MODULES = ("*RMSNorm",)
ACTIVATION_MODULES = ("*GELUActivation", "*GELUTanh", "QuickGELU*", "*SiLUActivation")


def _linear_gamma_entries(gamma: Any, epsilon: float) -> list:
    if gamma is None:
        return []
    if isinstance(gamma, int | float):
        gamma = {"linear": gamma, "addmm": gamma}
    if not isinstance(gamma, dict):
        raise TypeError(f"gamma must be a number, a dict selector -> gamma, or None; got {gamma!r}")
    return [(selector, LinearGamma(value, epsilon)) for selector, value in gamma.items()]


class _TransformerComposite(OpComposite):
    """Shared body of ``AttnLRP`` and ``CPLRP`` (gradient × input signal, no module hooks)."""

    _attention: tuple

    def __init__(
        self,
        epsilon: float = 1e-6,
        attention_epsilon: float = 0.0,
        gamma: Any = None,
        op_map: Sequence = (),
        module_rules: Sequence = (),
        canonizers: Sequence | None = None,
    ) -> None:
        self.epsilon, self.attention_epsilon, self.gamma = epsilon, attention_epsilon, gamma
        linear = LinearEpsilon(epsilon)
        defaults = [
            *_linear_gamma_entries(gamma, epsilon),
            ("linear", linear),
            ("addmm", linear),
            *self._attention_entries(attention_epsilon),
            ("layer_norm", NormIdentity()),
            ("rms_norm", NormIdentity()),
            ("activation", ElementwiseIdentity()),
            ("add", ResidualEpsilon(0.0)),
            ("cat", OpPass()),
            ("stack", OpPass()),
        ]
        modules = [(glob, ElementwiseIdentity()) for glob in NORM_MODULES]
        modules += [(glob, ActivationIdentity()) for glob in ACTIVATION_MODULES]
        super().__init__(
            list(op_map) + defaults,
            list(module_rules) + modules,
            signal="gradient",
            canonizers=canonizers,
        )

    def _attention_entries(self, epsilon: float) -> list:
        raise NotImplementedError


@register_composite("attn_lrp")
class AttnLRP(_TransformerComposite):
    """AttnLRP (Achtibat et al., ICML 2024) on any model, by captured operations.

    Linear maps (``nn.Linear``, ``F.linear``, ``addmm``): ``LinearEpsilon(epsilon)``;
    ``gamma`` (a number, or ``{selector: gamma}`` for groups of linear calls such as
    ``{Op("linear", within="encoder.layers.0"): 0.25}``) gives them ``LinearGamma`` instead.
    Bilinear matmuls: ``BilinearUniform(attention_epsilon)``; softmax: ``SoftmaxDeepTaylor``;
    ``scaled_dot_product_attention``: ``AttentionUniform``; element-wise products of two
    activations: ``ProductUniform``; norms and activations (also hand-written RMSNorm / GELU
    modules): identity rules; residual sums: ``ResidualEpsilon(0)``. Relevance flows as
    gradient × input between rules (see :class:`OpComposite`).
    """

    def _attention_entries(self, epsilon: float) -> list:
        return [
            ("matmul", BilinearUniform(epsilon)),
            ("softmax", SoftmaxDeepTaylor()),
            ("log_softmax", SoftmaxDeepTaylor()),
            ("attention", AttentionUniform(epsilon)),
            ("multi_head_attention", MultiheadAttentionSplit()),
            ("mul", ProductUniform()),
        ]


@register_composite("cp_lrp")
class CPLRP(_TransformerComposite):
    """CP-LRP (Ali et al., ICML 2022): as ``AttnLRP``, but no relevance flows through queries
    and keys (``SoftmaxConstant``, ``AttentionCP``) or through gates (``ProductGateStop``)."""

    def _attention_entries(self, epsilon: float) -> list:
        return [
            ("matmul", BilinearUniform(epsilon)),
            ("softmax", SoftmaxConstant()),
            ("log_softmax", SoftmaxConstant()),
            ("attention", AttentionCP()),
            ("multi_head_attention", MultiheadAttentionSplit()),
            ("mul", ProductGateStop()),
        ]


def captured_tree(composite: OpComposite) -> dict[str, list[dict[str, Any]]]:
    """The captured calls of the last forward pass grouped by enclosing module name."""
    tree: dict[str, list[dict[str, Any]]] = {}
    for entry in composite.captured:
        tree.setdefault(entry["module"], []).append(entry)
    return tree
