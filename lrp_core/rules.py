"""Rules: small declarations over ``BasicHook`` (LRP rules) or ``Hook`` (gradient rules).

Notation: module f, parameters θ, input x, incoming relevance R; x⁺ = max(x, 0), x⁻ = min(x, 0),
θ⁺/θ⁻ likewise; "no bias" means the bias is replaced by zeros; stab is the rule's stabilizer.
Every rule exposes its constructor keywords as attributes and through ``hyperparameters()``, so
``type(rule)(**rule.hyperparameters()) == rule``.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ._engine import (
    LINEAR_TYPES,
    ClampMod,
    GammaMod,
    ModuleCall,
    NoMod,
    ParamMod,
    RuleBase,
    Stabilizer,
    add_terms,
    check_number,
    expand,
    gamma_relevance,
    pack_sign,
    zero_params_list,
)
from ._engine import negative_part as _negative
from ._engine import positive_part as _positive
from ._gradient_rules import Pass, ReLUBetaSmooth, ReLUDeconvNet, ReLUGuidedBackprop
from .core import BasicHook, _identity

__all__ = [
    "ClampMod",
    "GammaMod",
    "NoMod",
    "zero_bias",
    "Epsilon",
    "ZPlus",
    "AlphaBeta",
    "Gamma",
    "ZBox",
    "Flat",
    "WSquare",
    "Norm",
    "Pass",
    "ReLUDeconvNet",
    "ReLUGuidedBackprop",
    "ReLUBetaSmooth",
]


def zero_bias(zero_params: str | list[str] | None = None) -> list[str]:
    """``zero_params`` as a list, with ``'bias'`` added."""
    names = zero_params_list(zero_params)
    return names if "bias" in names else [*names, "bias"]


def _ones(x: torch.Tensor) -> torch.Tensor:
    return torch.ones_like(x)


def _ones_param(param: torch.Tensor, name: str) -> torch.Tensor:
    return torch.ones_like(param)


def _square(param: torch.Tensor, name: str) -> torch.Tensor:
    return param * param


def _gradient_only(inputs: tuple, gradients: tuple) -> torch.Tensor:
    return gradients[0]


class _LRPRule(RuleBase, BasicHook):
    """A BasicHook rule with a stabilizer and ``zero_params``.

    Its parameter modifiers and gradient mapper act element by element (``_elementwise``), so the
    engine may process a linear-type module in slices of output channels.
    """

    _elementwise = True

    def _setup(self, stabilizer: Any, zero_params: Any, stabilizer_name: str = "stabilizer"):
        self._stabilize = Stabilizer.ensure(stabilizer, stabilizer_name)
        self.zero_params = zero_params
        return zero_params_list(zero_params)

    def _ratio(self, out_grad: torch.Tensor, outputs: tuple) -> tuple:
        """The one-term gradient mapper R / stab(z)."""
        return (out_grad / self._stabilize(outputs[0]),)


class Epsilon(_LRPRule):
    """R_in = x ⊙ Jᵀ(R / stab(f(x; θ), ε))."""

    _hyperparameters = ("epsilon", "zero_params")

    def __init__(self, epsilon: float | Stabilizer = 1e-6, zero_params=None):
        zeros = self._setup(epsilon, zero_params, "epsilon")
        self.epsilon = epsilon
        super().__init__(
            input_modifiers=[_identity],
            param_modifiers=[NoMod(zero_params=zeros)],
            output_modifiers=[_identity],
            gradient_mapper=self._ratio,
        )
        self._weighted_terms = (True,)


class Norm(Epsilon):
    """R_in = x ⊙ Jᵀ(R / stab(f(x))) on any module, parameters untouched."""

    _hyperparameters = ("stabilizer",)

    def __init__(self, stabilizer: float | Stabilizer = 1e-6):
        Stabilizer.ensure(stabilizer, "stabilizer")
        super().__init__(epsilon=stabilizer)
        self.stabilizer = stabilizer
        del self.epsilon


def _sum_pairs(inputs: tuple, gradients: tuple) -> torch.Tensor:
    return sum(x * v for x, v in zip(inputs, gradients, strict=False))


class ZPlus(_LRPRule):
    """z = f(x⁺;θ⁺) + f(x⁻;θ⁻, no bias); R_in = x⁺⊙J₁ᵀ(R/stab(z)) + x⁻⊙J₂ᵀ(R/stab(z))."""

    _hyperparameters = ("stabilizer", "zero_params")

    def __init__(self, stabilizer: float | Stabilizer = 1e-6, zero_params=None):
        zeros = self._setup(stabilizer, zero_params)
        self.stabilizer = stabilizer

        def mapper(out_grad, outputs):
            relevance = out_grad / self._stabilize(add_terms(outputs[0], outputs[1]))
            return (relevance, relevance)

        super().__init__(
            input_modifiers=[_positive, _negative],
            param_modifiers=[
                ClampMod(min=0.0, zero_params=zeros),
                ClampMod(max=0.0, zero_params=zero_bias(zeros)),
            ],
            output_modifiers=[_identity, _identity],
            gradient_mapper=mapper,
            reducer=_sum_pairs,
        )
        self._weighted_terms = (True, True)
        self._term_signs = (1, 1)


class AlphaBeta(_LRPRule):
    """z_p = f(x⁺;θ⁺) + f(x⁻;θ⁻, no bias), z_n = f(x⁺;θ⁻) + f(x⁻;θ⁺, no bias);
    R_in = α(x⁺⊙J₁ᵀc_p + x⁻⊙J₂ᵀc_p) − β(x⁺⊙J₃ᵀc_n + x⁻⊙J₄ᵀc_n),
    with c_p = R/stab(z_p) and c_n = R/stab(z_n).
    """

    _hyperparameters = ("alpha", "beta", "stabilizer", "zero_params")

    def __init__(self, alpha: float = 2.0, beta: float = 1.0, stabilizer=1e-6, zero_params=None):
        self.alpha = check_number(alpha, "alpha")
        self.beta = check_number(beta, "beta")
        if not math.isclose(self.alpha - self.beta, 1.0, rel_tol=0, abs_tol=1e-9):
            raise ValueError(f"alpha - beta must be 1 (got alpha={alpha!r}, beta={beta!r})")
        zeros = self._setup(stabilizer, zero_params)
        self.stabilizer = stabilizer
        alpha, beta = self.alpha, self.beta

        def mapper(out_grad, outputs):
            positive = out_grad / self._stabilize(add_terms(outputs[0], outputs[1]))
            negative = out_grad / self._stabilize(add_terms(outputs[2], outputs[3]))
            positive, negative = positive.mul_(alpha), negative.mul_(beta)
            return (positive, positive, negative, negative)

        def reducer(inputs, gradients):
            x = [i * g for i, g in zip(inputs, gradients, strict=False)]
            return x[0] + x[1] - x[2] - x[3]

        plus, minus = ClampMod(min=0.0, zero_params=zeros), ClampMod(max=0.0, zero_params=zeros)
        plus_nb = ClampMod(min=0.0, zero_params=zero_bias(zeros))
        minus_nb = ClampMod(max=0.0, zero_params=zero_bias(zeros))
        super().__init__(
            input_modifiers=[_positive, _negative, _positive, _negative],
            param_modifiers=[plus, minus_nb, minus, plus_nb],
            output_modifiers=[_identity] * 4,
            gradient_mapper=mapper,
            reducer=reducer,
        )
        self._weighted_terms = (True,) * 4
        self._term_signs = (1, 1, -1, -1)


class Gamma(_LRPRule):
    """Generalized gamma rule with G⁺θ = θ + γθ⁺, G⁻θ = θ + γθ⁻ and z = f(x; θ) (never
    modified by ``zero_params``, which acts on G⁺θ and G⁻θ):
    z_p = f(x⁺;G⁺θ) + f(x⁻;G⁻θ, no bias), z_n = f(x⁺;G⁻θ) + f(x⁻;G⁺θ, no bias);
    where z > 0 relevance R/stab(z_p) flows through the z_p pair, where z < 0 R/stab(z_n) through
    the z_n pair, where z = 0 nothing; R_in is the sum of the four x-part ⊙ VJP terms.
    """

    _hyperparameters = ("gamma", "stabilizer", "zero_params")

    def __init__(self, gamma: float = 0.25, stabilizer=1e-6, zero_params=None):
        self.gamma = check_number(gamma, "gamma")
        zeros = self._setup(stabilizer, zero_params)
        self.stabilizer = stabilizer
        up = GammaMod(self.gamma, min=0.0, zero_params=zeros)
        down = GammaMod(self.gamma, max=0.0, zero_params=zeros)
        up_nb = GammaMod(self.gamma, min=0.0, zero_params=zero_bias(zeros))
        down_nb = GammaMod(self.gamma, max=0.0, zero_params=zero_bias(zeros))

        def mapper(out_grad, outputs):
            z = outputs[4]
            positive = out_grad * (z > 0) / self._stabilize(add_terms(outputs[0], outputs[1]))
            negative = out_grad * (z < 0) / self._stabilize(add_terms(outputs[2], outputs[3]))
            return (positive, positive, negative, negative, None)

        # the mapper's structure as data, for exact shortcuts (``lrp_core.live.linear_terms``): z is
        # the output of term 4, the pair (0, 1) gets R·[z > 0], the pair (2, 3) R·[z < 0]
        mapper.sign_split = (4, (0, 1), (2, 3))

        def reducer(inputs, gradients):
            return sum(x * v for x, v in zip(inputs[:4], gradients[:4], strict=False))

        super().__init__(
            input_modifiers=[_positive, _negative, _positive, _negative, _identity],
            # z decides between the pairs; it is the module's own output, whatever zero_params
            # removes from the pairs (as the reference library does)
            param_modifiers=[up, down_nb, down, up_nb, NoMod()],
            output_modifiers=[_identity] * 5,
            gradient_mapper=mapper,
            reducer=reducer,
        )
        self._weighted_terms = (True,) * 4 + (False,)
        self._term_signs = (1, 1, 1, 1, 0)

    def _fast(self, module: torch.nn.Module) -> bool:
        return isinstance(module, LINEAR_TYPES)

    def _needs_local_graph(self, module: torch.nn.Module) -> bool:
        return not self._fast(module) and super()._needs_local_graph(module)

    def _keep(self, call: ModuleCall, outputs: list[torch.Tensor]) -> None:
        if self._fast(call.module) and len(outputs) == 1 and len(call.inputs) == 1:
            # only the sign of z = f(x; θ) is needed: keep it in two bits per element
            call.kept = pack_sign(outputs[0])
        super()._keep(call, outputs)

    def _relevance(self, call: ModuleCall, grad_outputs: tuple) -> tuple:
        if call.kept is None or torch.is_grad_enabled():
            return super()._relevance(call, grad_outputs)
        self.stored_tensors = call.stored
        self.pre_backward(call.module, grad_outputs, grad_outputs)
        return gamma_relevance(self, call, grad_outputs[0])


class ZBox(_LRPRule):
    """z = f(x;θ) − f(l;θ⁺) − f(h;θ⁻); R_in = x⊙J₁ᵀc − l⊙J₂ᵀc − h⊙J₃ᵀc with c = R/stab(z)."""

    _hyperparameters = ("low", "high", "stabilizer", "zero_params")

    def __init__(self, low, high, stabilizer=1e-6, zero_params=None):
        for name, value in (("low", low), ("high", high)):
            if not isinstance(value, torch.Tensor):
                check_number(value, name, minimum=-math.inf)
        if bool(torch.any(torch.as_tensor(low) > torch.as_tensor(high))):
            raise ValueError("low must not exceed high (got low > high somewhere)")
        self.low, self.high = low, high
        zeros = self._setup(stabilizer, zero_params)
        self.stabilizer = stabilizer

        def low_input(x):
            return expand(self.low, x.shape, cut_batch_dim=True, dtype=x.dtype, device=x.device)

        def high_input(x):
            return expand(self.high, x.shape, cut_batch_dim=True, dtype=x.dtype, device=x.device)

        def mapper(out_grad, outputs):
            relevance = out_grad / self._stabilize(outputs[0] - outputs[1] - outputs[2])
            return (relevance, relevance, relevance)

        def reducer(inputs, gradients):
            x = [i * g for i, g in zip(inputs, gradients, strict=False)]
            return x[0] - x[1] - x[2]

        super().__init__(
            input_modifiers=[_identity, low_input, high_input],
            param_modifiers=[
                NoMod(zero_params=zeros),
                ClampMod(min=0.0, zero_params=zeros),
                ClampMod(max=0.0, zero_params=zeros),
            ],
            output_modifiers=[_identity] * 3,
            gradient_mapper=mapper,
            reducer=reducer,
        )
        self._weighted_terms = (True,) * 3
        self._term_signs = (1, -1, -1)


class _OnesInputRule(_LRPRule):
    """Input replaced by ones, parameters modified by ``_param_modifier(zero_params list)``;
    R_in = Jᵀ(R / stab(z)) (the relevance is spread by the modified weights alone)."""

    _hyperparameters = ("stabilizer", "zero_params")

    @staticmethod
    def _param_modifier(zeros: list[str]) -> ParamMod:
        raise NotImplementedError

    def __init__(self, stabilizer=1e-6, zero_params=None):
        zeros = self._setup(stabilizer, zero_params)
        self.stabilizer = stabilizer
        super().__init__(
            input_modifiers=[_ones],
            param_modifiers=[self._param_modifier(zeros)],
            output_modifiers=[_identity],
            gradient_mapper=self._ratio,
            reducer=_gradient_only,
        )


class Flat(_OnesInputRule):
    """Input and parameters replaced by ones, bias zeroed; R_in = Jᵀ(R / stab(z))."""

    @staticmethod
    def _param_modifier(zeros: list[str]) -> ParamMod:
        return ParamMod(_ones_param, zero_params=zero_bias(zeros), require_params=False)


class WSquare(_OnesInputRule):
    """Input replaced by ones, parameters squared; R_in = Jᵀ(R / stab(z))."""

    @staticmethod
    def _param_modifier(zeros: list[str]) -> ParamMod:
        return ParamMod(_square, zero_params=zeros)


#: the built-in LRP rules (``BasicHook`` declarations), in the order they are listed to users
LRP_RULES = (Epsilon, ZPlus, AlphaBeta, Gamma, ZBox, Flat, WSquare, Norm)
#: the built-in gradient-modifying rules
GRADIENT_RULES = (Pass, ReLUDeconvNet, ReLUGuidedBackprop, ReLUBetaSmooth)
