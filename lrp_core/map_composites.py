"""Generic composites that assign rules from maps: by layer type, by module name, or both.

A composite maps each module of a model to a rule template, or to nothing (the module keeps its
plain gradient). Maps are lists of ``(key, rule)`` pairs, read in order: the first match wins.
``LayerMapComposite`` keys are layer types (or tuples of them, type groups included),
``NameMapComposite`` keys are tuples of qualified names from ``model.named_modules()``,
``NameLayerMapComposite`` tries names first, ``SpecialFirstLayerMapComposite`` gives the first
matching layer a rule of its own, and ``MixedComposite`` asks several composites in turn.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from torch import nn

from .core import Composite, Hook
from .types import MaxPool

TypeKey = type | tuple[type, ...]
LayerMap = list[tuple[TypeKey, Hook]]
NameMap = list[tuple[tuple[str, ...], Hook]]


class PlainGradientFallbackWarning(UserWarning):
    """Modules inside an LRP composite that no rule matched, so they keep their plain gradient."""


# Modules whose plain gradient is already right for LRP (or that compute nothing), never reported.
PLAIN_GRADIENT_TYPES = (
    nn.Identity,
    nn.Flatten,
    nn.Unflatten,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
    MaxPool,
)


def _check_rule(owner: str, rule: Any) -> None:
    is_hook = callable(getattr(rule, "copy", None)) and callable(getattr(rule, "register", None))
    if isinstance(rule, type) or not is_hook:
        raise TypeError(
            f"{owner}: expected a rule instance (a Hook with copy() and register()), got "
            f"{rule!r}; write entries as (key, rule), e.g. (nn.Linear, Epsilon())"
        )


def _checked_layer_map(owner: str, layer_map: Sequence | None) -> LayerMap:
    """Validate ``[(type or tuple of types, rule), ...]`` and return it as a list."""
    checked = []
    for entry in layer_map or ():
        if not (isinstance(entry, tuple | list) and len(entry) == 2):
            raise TypeError(f"{owner}: layer map entries must be (type, rule) pairs, got {entry!r}")
        key, rule = entry
        keys = key if isinstance(key, tuple) else (key,)
        if not keys or not all(isinstance(k, type) for k in keys):
            raise TypeError(
                f"{owner}: a layer map key must be a module type or a tuple of types, got {key!r}"
            )
        _check_rule(owner, rule)
        checked.append((key, rule))
    return checked


def _checked_name_map(owner: str, name_map: Sequence | None) -> NameMap:
    """Validate ``[(tuple of module names, rule), ...]`` (one name may be a plain string)."""
    checked = []
    for entry in name_map or ():
        if not (isinstance(entry, tuple | list) and len(entry) == 2):
            raise TypeError(f"{owner}: name map entries must be (names, rule) pairs, got {entry!r}")
        names, rule = entry
        names = (names,) if isinstance(names, str) else tuple(names)
        if not all(isinstance(name, str) for name in names):
            raise TypeError(f"{owner}: module names must be strings, got {names!r}")
        _check_rule(owner, rule)
        checked.append((names, rule))
    return checked


class MapComposite(Composite):
    """Base of the map-based composites; subclasses define ``mapping(ctx, name, module)``.

    After ``register(model)`` (and also after leaving ``context``): ``assignments`` maps each
    matched module's qualified name to its rule template, ``matched_modules`` lists those names and
    ``fallback_modules`` the names of the unmatched leaf modules that compute something (not
    containers, ``nn.Identity``, ``nn.Flatten``, dropout or max pooling: see ``quiet_types``).
    While registered, ``registered_rules`` maps names to the registered rule copies. With
    ``report_fallback`` True, each registration with fallbacks emits one
    ``PlainGradientFallbackWarning`` naming them.
    """

    report_fallback: bool = False

    def __init__(self, canonizers: Sequence | None = None) -> None:
        super().__init__(module_map=self._recorded_mapping, canonizers=canonizers)
        self.assignments: dict[str, Hook] = {}
        self.fallback_modules: list[str] = []
        self._recording: list[tuple[str, nn.Module, Hook | None]] | None = None

    def mapping(self, ctx: dict, name: str, module: nn.Module) -> Hook | None:
        """Return the rule template for ``module`` (named ``name``), or None for none."""
        raise NotImplementedError

    def quiet_types(self) -> tuple[type, ...]:
        """Leaf types whose plain gradient is fine here, so they are never reported."""
        return PLAIN_GRADIENT_TYPES

    @property
    def matched_modules(self) -> list[str]:
        """Names of the modules that got a rule at the last registration."""
        return list(self.assignments)

    @property
    def registered_rules(self) -> dict[str, Hook]:
        """While registered: qualified module name -> the rule copy registered on that module."""
        if len(self.hooks) != len(self.assignments):
            return {}
        return dict(zip(self.assignments, self.hooks, strict=True))

    def _recorded_mapping(self, ctx: dict, name: str, module: nn.Module) -> Hook | None:
        rule = self.mapping(ctx, name, module)
        if self._recording is not None:
            self._recording.append((name, module, rule))
        return rule

    def register(self, module: nn.Module) -> None:
        """Apply the canonizers, then register a copy of the matching rule on every module."""
        self._recording = []
        try:
            super().register(module)
            visited = self._recording
        finally:
            self._recording = None
        self.assignments = {name: rule for name, _, rule in visited if rule is not None}
        fallbacks = [
            (name, child)
            for name, child, rule in visited
            if rule is None and self._reportable(child)
        ]
        self.fallback_modules = [name for name, _ in fallbacks]
        if self.report_fallback and fallbacks:
            listing = ", ".join(f"{name or '<root>'} ({type(m).__name__})" for name, m in fallbacks)
            warnings.warn(
                f"{type(self).__name__}: no rule matched {len(fallbacks)} module(s), which keep "
                f"the plain gradient: {listing}. Give them a rule with layer_map if their "
                "relevance matters.",
                PlainGradientFallbackWarning,
                stacklevel=2,
            )

    def _reportable(self, module: nn.Module) -> bool:
        """A leaf that computes something whose plain gradient is not already right for LRP."""
        return next(module.children(), None) is None and not isinstance(module, self.quiet_types())

    def preview(self, module: nn.Module) -> dict[str, Hook | None]:
        """Map every qualified module name to the rule template it would get (None: plain
        gradient), without registering anything. The canonizers are applied meanwhile, so the
        modules they add are listed, and removed again. Call it while not registered."""
        if self.hooks:
            raise RuntimeError(
                f"{type(self).__name__}.preview: the composite is registered; call remove() first"
            )
        instances: list = []
        try:
            for canonizer in self.canonizers:
                instances.extend(canonizer.apply(module))
            ctx: dict = {}
            return {name: self.mapping(ctx, name, child) for name, child in module.named_modules()}
        finally:
            for instance in reversed(instances):
                instance.remove()


class LayerMapComposite(MapComposite):
    """Assign rules by layer type: the first ``(type_or_tuple, rule)`` of ``layer_map`` that the
    module is an instance of gives its rule."""

    def __init__(self, layer_map: Sequence, canonizers: Sequence | None = None) -> None:
        self.layer_map = _checked_layer_map(type(self).__name__, layer_map)
        super().__init__(canonizers=canonizers)

    def mapping(self, ctx: dict, name: str, module: nn.Module) -> Hook | None:
        """Return the rule of the first matching type in ``layer_map``, or None."""
        for key, rule in self.layer_map:
            if isinstance(module, key):
                return rule
        return None


class SpecialFirstLayerMapComposite(LayerMapComposite):
    """Like ``LayerMapComposite``, but the first module (in ``named_modules()`` order) that matches
    a type of ``first_map`` gets that rule instead."""

    def __init__(
        self, layer_map: Sequence, first_map: Sequence, canonizers: Sequence | None = None
    ) -> None:
        self.first_map = _checked_layer_map(type(self).__name__, first_map)
        super().__init__(layer_map, canonizers=canonizers)

    def mapping(self, ctx: dict, name: str, module: nn.Module) -> Hook | None:
        """The first module matching ``first_map`` gets its rule; others the layer map's."""
        if not ctx.get("first_layer_visited", False):
            for key, rule in self.first_map:
                if isinstance(module, key):
                    ctx["first_layer_visited"] = True
                    return rule
        return super().mapping(ctx, name, module)


class NameMapComposite(MapComposite):
    """Assign rules by qualified module name: ``name_map`` is ``[(tuple_of_names, rule), ...]``."""

    def __init__(self, name_map: Sequence, canonizers: Sequence | None = None) -> None:
        self.name_map = _checked_name_map(type(self).__name__, name_map)
        super().__init__(canonizers=canonizers)

    def mapping(self, ctx: dict, name: str, module: nn.Module) -> Hook | None:
        """Return the rule of the first entry listing ``name``, or None."""
        for names, rule in self.name_map:
            if name in names:
                return rule
        return None


class MixedComposite(MapComposite):
    """Ask several composites in order; the first one that gives a rule wins.

    Each member keeps its own context (so e.g. a special first layer is tracked per member). The
    members' canonizers are applied after ``canonizers``.
    """

    def __init__(self, composites: Sequence[Composite], canonizers: Sequence | None = None) -> None:
        self.composites = list(composites)
        for composite in self.composites:
            if not callable(getattr(composite, "module_map", None)):
                raise TypeError(
                    f"MixedComposite: expected composites, got {type(composite).__name__}"
                )
        members = [c for composite in self.composites for c in (composite.canonizers or [])]
        self.report_fallback = any(getattr(c, "report_fallback", False) for c in self.composites)
        super().__init__(canonizers=list(canonizers or []) + members)

    def mapping(self, ctx: dict, name: str, module: nn.Module) -> Hook | None:
        """Return the first rule that a member composite gives, or None.

        Every member sees every module, also when an earlier member already gave it a rule, so
        a member's own state advances as if it ran alone: e.g. ``EpsilonPlusFlat``'s first layer
        is the model's first linear-type layer even if a name map claimed that layer (as in the
        reference library).
        """
        rules = [
            composite.module_map(ctx.setdefault(("member", index), {}), name, module)
            for index, composite in enumerate(self.composites)
        ]
        return next((rule for rule in rules if rule is not None), None)


class NameLayerMapComposite(MixedComposite):
    """Assign rules by name first (``name_map``), then by layer type (``layer_map``).

    A ``MixedComposite`` of ``[NameMapComposite(name_map), LayerMapComposite(layer_map)]`` (its
    ``composites``, as in the reference library); ``name_map`` and ``layer_map`` are those
    members' maps.
    """

    def __init__(
        self,
        name_map: Sequence | None = None,
        layer_map: Sequence | None = None,
        canonizers: Sequence | None = None,
    ) -> None:
        owner = type(self).__name__
        members = [
            NameMapComposite(_checked_name_map(owner, name_map)),
            LayerMapComposite(_checked_layer_map(owner, layer_map)),
        ]
        super().__init__(members, canonizers=canonizers)

    @property
    def name_map(self) -> NameMap:
        """The name map (of the first member)."""
        return self.composites[0].name_map

    @property
    def layer_map(self) -> LayerMap:
        """The layer map (of the second member)."""
        return self.composites[1].layer_map


__all__ = [
    "LayerMap",
    "LayerMapComposite",
    "MapComposite",
    "MixedComposite",
    "NameLayerMapComposite",
    "NameMap",
    "NameMapComposite",
    "PlainGradientFallbackWarning",
    "SpecialFirstLayerMapComposite",
]
