"""Named composites: the usual LRP and gradient-modifying presets, and a registry of them by name.

Every LRP preset shares ``layer_map_base`` (activations: Pass; sums and average pools: Norm; batch
norms: Pass) and adds its rules for linear-type layers. Each takes ``layer_map`` (entries placed
before the defaults, so they win), ``canonizers``, and its rule parameters as keywords. Modules that
no rule matches keep their plain gradient; the LRP presets name such modules in a
``PlainGradientFallbackWarning``. ``get_composite(name)`` returns a preset class by its registered
name; ``register_composite(name)`` adds one. The generic composites live in ``map_composites``
and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from .core import Composite, Hook, Stabilizer
from .layer import Sum
from .map_composites import (
    LayerMap,
    LayerMapComposite,
    MapComposite,
    MixedComposite,
    NameLayerMapComposite,
    NameMapComposite,
    PlainGradientFallbackWarning,
    SpecialFirstLayerMapComposite,
)
from .rules import (
    AlphaBeta,
    Epsilon,
    Flat,
    Gamma,
    Norm,
    Pass,
    ReLUBetaSmooth,
    ReLUDeconvNet,
    ReLUGuidedBackprop,
    ZBox,
    ZPlus,
)
from .types import Activation, AvgPool, BatchNorm, Convolution, Dense, Linear

COMPOSITES: dict[str, type[Composite]] = {}
#: composites with rules on captured operations (``lrp_core.op_composites``: ``attn_lrp``,
#: ``cp_lrp``), registered when that module is imported; kept apart from ``COMPOSITES``, the
#: module-rule composites every model and widget can use (the reference library's set)
OP_COMPOSITES: dict[str, type[Composite]] = {}


class UnknownCompositeError(KeyError, ValueError):
    """``get_composite`` was given a name that no composite is registered under."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def register_composite(name: str) -> Callable[[type[Composite]], type[Composite]]:
    """Class decorator registering a composite class in ``COMPOSITES`` under ``name``."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"register_composite: the name must be a non-empty string, got {name!r}")

    def decorate(cls: type[Composite]) -> type[Composite]:
        if not (isinstance(cls, type) and issubclass(cls, Composite)):
            raise TypeError(f"register_composite({name!r}): {cls!r} is not a Composite subclass")
        registry = OP_COMPOSITES if getattr(cls, "captures_operations", False) else COMPOSITES
        taken = COMPOSITES.get(name) or OP_COMPOSITES.get(name)
        if taken not in (None, cls):
            raise ValueError(
                f"register_composite: the name {name!r} is already taken by "
                f"{taken.__name__}; choose another name"
            )
        registry[name] = cls
        return cls

    return decorate


def get_composite(name: str) -> type[Composite]:
    """Return the composite class registered under ``name`` (``"epsilon_plus_flat"``), or
    under its class name (``"EpsilonPlusFlat"``).

    Raises ``UnknownCompositeError`` (a ``KeyError`` and ``ValueError``) listing the known names.
    """
    registered = {**COMPOSITES, **OP_COMPOSITES}
    try:
        return registered[name]
    except (KeyError, TypeError):
        by_class = [cls for cls in registered.values() if cls.__name__ == name]
        if by_class:
            return by_class[0]
        known = ", ".join(sorted(registered))
        raise UnknownCompositeError(
            f"unknown composite {name!r}; known composites: {known} (attn_lrp and cp_lrp once "
            "lrp_core.op_composites is imported)"
        ) from None


def _norm(stabilizer: Any) -> Norm:
    """``Norm(stabilizer)``, with errors naming the composite keyword ``stabilizer``."""
    Stabilizer.ensure(stabilizer, "stabilizer")
    return Norm(stabilizer=stabilizer)


def layer_map_base(stabilizer: Any = 1e-6) -> LayerMap:
    """The part every LRP composite shares: activations pass relevance on unchanged, sums and
    average pools distribute it in proportion to their inputs, batch norms pass it on.

    Raises ``ValueError`` naming ``stabilizer`` if it is neither a number >= 0 nor a stabilizer.
    """
    return [
        (Activation, Pass()),
        (Sum, _norm(stabilizer)),
        (AvgPool, _norm(stabilizer)),
        (BatchNorm, Pass()),
    ]


class _LRPComposite:
    """Mixin for the LRP presets: they report modules that keep the plain gradient."""

    report_fallback = True


@register_composite("epsilon_gamma_box")
class EpsilonGammaBox(_LRPComposite, SpecialFirstLayerMapComposite):
    """Convolutions: Gamma; dense layers: Epsilon; the first convolution: ZBox(low, high)."""

    def __init__(
        self,
        low: Any,
        high: Any,
        epsilon: float = 1e-6,
        gamma: float = 0.25,
        stabilizer: Any = 1e-6,
        layer_map: Sequence | None = None,
        first_map: Sequence | None = None,
        zero_params: Any = None,
        canonizers: Sequence | None = None,
    ) -> None:
        self.low, self.high, self.epsilon, self.gamma = low, high, epsilon, gamma
        self.stabilizer, self.zero_params = stabilizer, zero_params
        specific = [
            (Convolution, Gamma(gamma=gamma, stabilizer=stabilizer, zero_params=zero_params)),
            (Dense, Epsilon(epsilon=epsilon, zero_params=zero_params)),
        ]
        first = [(Convolution, ZBox(low, high, stabilizer=stabilizer, zero_params=zero_params))]
        super().__init__(
            list(layer_map or []) + layer_map_base(stabilizer) + specific,
            list(first_map or []) + first,
            canonizers=canonizers,
        )


def _zplus(stabilizer: Any, zero_params: Any) -> Hook:
    return ZPlus(stabilizer=stabilizer, zero_params=zero_params)


def _alpha2_beta1(stabilizer: Any, zero_params: Any) -> Hook:
    return AlphaBeta(alpha=2.0, beta=1.0, stabilizer=stabilizer, zero_params=zero_params)


class _EpsilonComposite(_LRPComposite, SpecialFirstLayerMapComposite):
    """Shared body of the Epsilon* presets: dense layers get Epsilon, convolutions the rule made by
    ``_conv_rule(stabilizer, zero_params)``; the ``*Flat`` presets (``_EpsilonFlatComposite``)
    give the first linear-type layer Flat."""

    _conv_rule: Callable[[Any, Any], Hook]

    def __init__(
        self,
        epsilon: float = 1e-6,
        stabilizer: Any = 1e-6,
        layer_map: Sequence | None = None,
        zero_params: Any = None,
        canonizers: Sequence | None = None,
    ) -> None:
        self._build(epsilon, stabilizer, layer_map, None, False, zero_params, canonizers)

    def _build(
        self,
        epsilon: float,
        stabilizer: Any,
        layer_map: Sequence | None,
        first_map: Sequence | None,
        flat_first: bool,
        zero_params: Any,
        canonizers: Sequence | None,
    ) -> None:
        self.epsilon, self.stabilizer, self.zero_params = epsilon, stabilizer, zero_params
        specific = [
            (Convolution, type(self)._conv_rule(stabilizer, zero_params)),
            (Dense, Epsilon(epsilon=epsilon, zero_params=zero_params)),
        ]
        first = list(first_map or [])
        if flat_first:
            first.append((Linear, Flat(stabilizer=stabilizer, zero_params=zero_params)))
        super().__init__(
            list(layer_map or []) + layer_map_base(stabilizer) + specific,
            first,
            canonizers=canonizers,
        )


class _EpsilonFlatComposite(_EpsilonComposite):
    """An Epsilon* preset whose first linear-type layer (conv or dense) gets Flat."""

    def __init__(
        self,
        epsilon: float = 1e-6,
        stabilizer: Any = 1e-6,
        layer_map: Sequence | None = None,
        first_map: Sequence | None = None,
        zero_params: Any = None,
        canonizers: Sequence | None = None,
    ) -> None:
        self._build(epsilon, stabilizer, layer_map, first_map, True, zero_params, canonizers)


@register_composite("epsilon_plus")
class EpsilonPlus(_EpsilonComposite):
    """Convolutions: ZPlus; dense layers: Epsilon."""

    _conv_rule = staticmethod(_zplus)


@register_composite("epsilon_alpha2_beta1")
class EpsilonAlpha2Beta1(_EpsilonComposite):
    """Convolutions: AlphaBeta(alpha=2, beta=1); dense layers: Epsilon."""

    _conv_rule = staticmethod(_alpha2_beta1)


@register_composite("epsilon_plus_flat")
class EpsilonPlusFlat(_EpsilonFlatComposite):
    """As EpsilonPlus, but the first linear-type layer (conv or dense) gets Flat."""

    _conv_rule = staticmethod(_zplus)


@register_composite("epsilon_alpha2_beta1_flat")
class EpsilonAlpha2Beta1Flat(_EpsilonFlatComposite):
    """As EpsilonAlpha2Beta1, but the first linear-type layer (conv or dense) gets Flat."""

    _conv_rule = staticmethod(_alpha2_beta1)


@register_composite("excitation_backprop")
class ExcitationBackprop(_LRPComposite, LayerMapComposite):
    """Sums and average pools: Norm; all linear-type layers: ZPlus; activations keep their
    gradient (which is part of the method, so they are not reported as fallbacks)."""

    def __init__(
        self,
        stabilizer: Any = 1e-6,
        layer_map: Sequence | None = None,
        zero_params: Any = None,
        canonizers: Sequence | None = None,
    ) -> None:
        self.stabilizer, self.zero_params = stabilizer, zero_params
        defaults = [
            (Sum, _norm(stabilizer)),
            (AvgPool, _norm(stabilizer)),
            (Linear, ZPlus(stabilizer=stabilizer, zero_params=zero_params)),
        ]
        super().__init__(list(layer_map or []) + defaults, canonizers=canonizers)

    def quiet_types(self) -> tuple[type, ...]:
        return (*super().quiet_types(), Activation)


@register_composite("guided_backprop")
class GuidedBackprop(LayerMapComposite):
    """ReLUs pass only positive gradient where the ReLU was active (guided backpropagation)."""

    def __init__(self, layer_map: Sequence | None = None, canonizers: Sequence | None = None):
        super().__init__(list(layer_map or []) + [(nn.ReLU, ReLUGuidedBackprop())], canonizers)


@register_composite("deconvnet")
class DeconvNet(LayerMapComposite):
    """ReLUs pass the positive part of the incoming gradient (DeconvNet)."""

    def __init__(self, layer_map: Sequence | None = None, canonizers: Sequence | None = None):
        super().__init__(list(layer_map or []) + [(nn.ReLU, ReLUDeconvNet())], canonizers)


@register_composite("beta_smooth")
class BetaSmooth(LayerMapComposite):
    """ReLUs backpropagate like a softplus of sharpness ``beta_smooth``: sigmoid(beta x) * grad."""

    def __init__(
        self,
        beta_smooth: float = 10.0,
        layer_map: Sequence | None = None,
        zero_params: Any = None,
        canonizers: Sequence | None = None,
    ) -> None:
        # zero_params: accepted as in the reference library; the ReLU rule has no parameters
        self.beta_smooth = beta_smooth
        rule = ReLUBetaSmooth(beta_smooth=beta_smooth)
        super().__init__(list(layer_map or []) + [(nn.ReLU, rule)], canonizers)


__all__ = [
    "COMPOSITES",
    "OP_COMPOSITES",
    "LayerMap",
    "BetaSmooth",
    "DeconvNet",
    "EpsilonAlpha2Beta1",
    "EpsilonAlpha2Beta1Flat",
    "EpsilonGammaBox",
    "EpsilonPlus",
    "EpsilonPlusFlat",
    "ExcitationBackprop",
    "GuidedBackprop",
    "LayerMapComposite",
    "MapComposite",
    "MixedComposite",
    "NameLayerMapComposite",
    "NameMapComposite",
    "PlainGradientFallbackWarning",
    "SpecialFirstLayerMapComposite",
    "UnknownCompositeError",
    "get_composite",
    "layer_map_base",
    "register_composite",
]
