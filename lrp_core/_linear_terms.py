"""Closed-form relevance of signed-sum LRP rules on linear layers, for backward-only re-runs.

For a Linear layer or a convolution, f(x; θ) = W⋆x + b, the VJP of a term does not depend on the
term's input: (∂f(x_k; θ_k)/∂x_k)ᵀ γ = W_kᵀ⋆γ, a transposed convolution (or a product with the
matrix) with the modified weight W_k. A rule whose reducer is a signed sum and whose gradient
mapper is linear in the relevance R (γ_k = R ⊙ φ_k, all the built-in LRP rules that declare
``_term_signs``) gives

    R_in = Σ_k s_k · x_k ⊙ (W_kᵀ⋆(R ⊙ φ_k)).

Terms sharing one factor φ share γ, and their VJPs are one call with the weights stacked along the
input channels: [W_a | W_b]ᵀ⋆γ = [W_aᵀ⋆γ, W_bᵀ⋆γ]. The factors φ_k, the term inputs x_k and the
stacked weights depend only on the layer's input and parameters, so ``LinearTerms`` is made once
per (module call, rule) and then maps any R with one product and one VJP per distinct factor
(ZBox's three terms on the first layer: one transposed convolution instead of three).

Making it again after a parameter change need not run the layer: a modified forward is linear in
the weight, and NoMod, ClampMod and GammaMod give weights Σ_j c_j B_j(W) with B_j the identity or
a clamp, so y_k = Σ_j c_j (x_k ⋆ B_j(W)) + b_k. The partial outputs x_k ⋆ B_j(W) of pure input
modifiers (identity, x⁺, x⁻) are kept for the layers being edited (``partials``, given by the
cache from a call's second build on), so a new γ of Gamma only recombines them.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from . import rules as _rules
from ._hook_function import ModuleCall, post_forward, pre_forward
from ._modifiers import ClampMod, GammaMod, NoMod, ParamMod, _param_identity
from ._relevance import _term_vanishes, _zeros, map_relevance, nonzero
from .core import BasicHook, _identity

#: module types whose forward is exactly ``W⋆x + b`` (subclasses may override ``forward``)
_CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_OUR_HOOKS = (pre_forward, post_forward)
#: input modifiers that are pure functions of the input (their partial outputs may be shared)
_PURE_INPUTS = (_identity, _rules._positive, _rules._negative)


def _plain_linear(module: nn.Module) -> bool:
    """Whether ``module`` computes W⋆x + b with its ``weight`` parameter and nothing else."""
    if type(module) not in (nn.Linear, *_CONV_TYPES):
        return False
    if "weight" not in module._parameters or hasattr(module, "parametrizations"):
        return False
    if "forward" in module.__dict__:  # an instance's own forward (e.g. set by a canonizer)
        return False
    hooks = (*module._forward_pre_hooks.values(), *module._forward_hooks.values())
    if any(not (isinstance(h, partial) and h.func in _OUR_HOOKS) for h in hooks):
        return False  # a foreign hook may change the output
    if type(module) is nn.Linear:
        return True
    return (
        module.groups == 1
        and module.padding_mode == "zeros"
        and all(isinstance(p, int) for p in module.padding)
    )


def applies(rule: BasicHook, call: ModuleCall) -> bool:
    """Whether ``LinearTerms`` computes ``rule`` on ``call`` (else the generic formula does)."""
    return (
        rule._term_signs is not None
        and all(m is _identity for m in rule.output_modifiers)
        and call.inputs is not None
        and len(call.inputs) == 1
        and call.output_shapes is not None
        and len(call.output_shapes) == 1
        and _plain_linear(call.module)
        and (type(call.module) is nn.Linear or call.inputs[0].ndim == call.module.weight.ndim)
    )


class _Group:
    """Terms sharing one factor φ: their inputs, signs, and their weights stacked on axis 1."""

    __slots__ = ("factor", "inputs", "signs", "weight", "sizes")

    def __init__(self, factor: torch.Tensor):
        self.factor = factor
        self.inputs: list[torch.Tensor] = []
        self.signs: list[int] = []
        self.weight: torch.Tensor | list[torch.Tensor] = []
        self.sizes: list[int] = []


class LinearTerms:
    """What a re-run of ``rule`` on one call of a plain linear layer needs (see module doc).

    Build it with ``LinearTerms(rule, call)`` when ``applies(rule, call)``; then
    ``relevance(R)`` is the rule's relevance at the input for the relevance ``R`` at the output.
    """

    def __init__(self, rule: BasicHook, call: ModuleCall, partials: dict | None = None):
        module, (x,) = call.module, call.inputs
        self.module = module
        self.input_shape = x.shape
        shape = call.output_shapes[0]
        self._weight = module._parameters["weight"]
        self._weight_version = self._weight._version
        original = self._weight.detach()
        outputs: list[torch.Tensor] = []
        terms: list[tuple[int, torch.Tensor, torch.Tensor] | None] = []
        identity_terms = rule._identity_terms
        with torch.no_grad():
            for k, modify in enumerate(rule.input_modifiers):
                x_k = modify(x)
                if _term_vanishes(rule, module, k, [x_k]):
                    outputs.append(_zeros(shape, x))
                    terms.append(None)
                    continue
                param_mod = rule.param_modifiers[k]
                pure = partials is not None and modify in _PURE_INPUTS
                basis = _decompose(param_mod) if pure else None
                with param_mod(module):
                    weight = module._parameters["weight"].detach()
                    bias = module._parameters.get("bias")
                    if identity_terms[k] and call.outputs_unchanged():
                        (y_k,) = (y.detach() for y in call.outputs)
                    elif basis is not None:
                        y_k = self._combine(basis, original, bias, modify, x_k, partials)
                    else:
                        (y_k,) = call.rerun([x_k])
                outputs.append(y_k)
                terms.append((rule._term_signs[k], x_k, weight))
            ones = torch.ones(shape, dtype=x.dtype, device=x.device)
            factors = map_relevance(rule, ones, tuple(outputs))
        del outputs
        groups: dict[int, _Group] = {}
        for term, factor in zip(terms, factors, strict=True):
            if term is None or factor is None or term[0] == 0:
                continue  # a vanished or unweighted term adds nothing to the signed sum
            sign, x_k, weight = term
            group = groups.setdefault(id(factor), _Group(factor))
            group.inputs.append(x_k)
            group.signs.append(sign)
            group.weight.append(weight)
            group.sizes.append(weight.shape[1])
        for group in groups.values():
            weights = group.weight
            group.weight = weights[0] if len(weights) == 1 else torch.cat(weights, dim=1)
        self.groups = list(groups.values())

    def relevance(self, grad: torch.Tensor) -> torch.Tensor:
        """R_in = Σ_k s_k x_k ⊙ W_kᵀ⋆(R ⊙ φ_k) for the relevance ``grad`` at the output.

        Raises ``RuntimeError`` if the layer's weight was changed in place since the terms were
        made (they would no longer match the forward pass).
        """
        if self._weight._version != self._weight_version:
            raise RuntimeError(
                f"the weight of {type(self.module).__name__} was modified in place after the "
                "forward pass; run the forward pass again (set_inputs) after changing parameters"
            )
        result = None
        several = len(self.groups) > 1
        for group in self.groups:
            gamma = grad * group.factor
            if several and not nonzero(gamma):
                continue  # e.g. Gamma's z < 0 part after a ReLU: exactly zero
            vjp = self._input_vjp(gamma, group.weight, sum(group.sizes))
            del gamma
            parts = vjp.split(group.sizes, dim=vjp.ndim - 1 if self._dense else 1)
            for x_k, sign, v_k in zip(group.inputs, group.signs, parts, strict=True):
                if result is None:
                    result = torch.mul(v_k, x_k)
                    if sign < 0:
                        result.neg_()
                else:
                    result.addcmul_(v_k, x_k, value=sign)
        if result is None:
            return torch.zeros(self.input_shape, dtype=grad.dtype, device=grad.device)
        return result

    def _combine(self, basis: list, weight, bias, modify, x_k: torch.Tensor, partials: dict):
        """y_k = Σ_j c_j (x_k ⋆ B_j(W)) + b_k (W: the original ``weight``, b_k: the modified
        ``bias``), the partial outputs taken from or added to ``partials``."""
        pairs = []
        for coefficient, bounds in basis:
            key = (modify, bounds, self._weight_version)  # stale if the weight changed
            partial = partials.get(key)
            if partial is None:
                clamped = weight if bounds is None else weight.clamp(min=bounds[0], max=bounds[1])
                partial = partials[key] = self._forward(x_k, clamped)
            pairs.append((coefficient, partial))
        # y_k must be a new tensor (it is changed in place), never a kept partial output
        (first, y_k), *rest = pairs
        if rest and first == 1:
            (second, partial), *rest = rest
            y_k = torch.add(y_k, partial, alpha=second)
        else:
            y_k = y_k * first
        for coefficient, partial in rest:
            y_k.add_(partial, alpha=coefficient)
        if bias is not None:
            bias = bias.detach()
            y_k.add_(bias if self._dense else bias.reshape(-1, *(1,) * (y_k.ndim - 2)))
        return y_k

    def _forward(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        if self._dense:
            return nn.functional.linear(x, weight)
        return self.module._conv_forward(x, weight, None)

    @property
    def _dense(self) -> bool:
        return type(self.module) is nn.Linear

    def _input_vjp(self, gamma: torch.Tensor, weight: torch.Tensor, channels: int) -> torch.Tensor:
        """W⋆ᵀγ: the gradient of the layer with weight ``weight`` at an input of ``channels``."""
        if self._dense:
            return gamma.matmul(weight)
        module = self.module
        shape = (self.input_shape[0], channels, *self.input_shape[2:])
        # only the input's shape matters for the VJP of a linear map: a broadcast zero stands in
        like = torch.zeros((), dtype=gamma.dtype, device=gamma.device).expand(shape)
        (vjp, _, _) = torch.ops.aten.convolution_backward(
            gamma,
            like,
            weight,
            None,
            list(module.stride),
            list(module.padding),
            list(module.dilation),
            False,
            [0] * (weight.ndim - 2),
            1,
            [True, False, False],
        )
        return vjp


def _decompose(param_mod: ParamMod) -> list[tuple[float, tuple | None]] | None:
    """The weight ``param_mod`` makes, as [(c_j, B_j)] meaning Σ_j c_j B_j(W) with B_j the
    identity (None) or a clamp to (min, max); None for other modifiers."""
    if param_mod.param_keys is not None or "weight" in param_mod.zero_params:
        return None
    kind = type(param_mod)
    if kind is NoMod or (kind is ParamMod and param_mod.modifier is _param_identity):
        return [(1.0, None)]
    if kind is ClampMod:
        return [(1.0, (param_mod.min, param_mod.max))]
    if kind is GammaMod:
        return [(1.0, None), (param_mod.gamma, (param_mod.min, param_mod.max))]
    return None
