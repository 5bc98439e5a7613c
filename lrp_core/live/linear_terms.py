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
(ZBox's three terms on the first layer: one transposed convolution instead of three). Terms whose
input is a constant c per input channel (ZBox's bounds) fold into one weight:
Σ_k s_k c_k ⊙ (W_kᵀ⋆γ) = (Σ_k s_k c_k W_k)ᵀ⋆γ.

Gamma's factors are masked by the sign of the layer's own output z: φ = [z > 0]/stab(z_p) for
the z_p pair, [z < 0]/stab(z_n) for the z_n pair (its mapper declares this as ``sign_split``).
A pair whose masked relevance R ⊙ [z ≷ 0] is all zero contributes exactly zero, so its factor,
modified forwards and weights are made only once some relevance reaches its mask (after a ReLU
whose relevance comes from a rule weighted by its input, the z_n pair never is).

Making the terms again after a parameter change need not run the layer: a modified forward is
linear in the parameters, and NoMod, ClampMod and GammaMod give parameters Σ_j c_j B_j(θ) with B_j
the identity or a clamp (the bias either the same way or zeroed), so
y_k = Σ_j c_j (x_k ⋆ B_j(W) + B_j(b)). For the layers being edited the cache keeps (``partials``,
given from a call's second build on) the rule-independent parts: the partial outputs
x_k ⋆ B_j(W) + B_j(b) of pure input modifiers (identity, x⁺, x⁻; x ⋆ W + b is the layer's own
output), those inputs themselves and the masks of z; a new γ of Gamma then only recombines them.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from .._engine import (
    ClampMod,
    GammaMod,
    ModuleCall,
    NoMod,
    ParamMod,
    Stabilizer,
    add_terms,
    broadcast_zeros,
    map_relevance,
    negative_part,
    nonzero,
    param_identity,
    positive_part,
    post_forward,
    pre_forward,
    term_vanishes,
)
from ..core import BasicHook, _identity

#: module types whose forward is exactly ``W⋆x + b`` (subclasses may override ``forward``)
_CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_OUR_HOOKS = (pre_forward, post_forward)
#: input modifiers that are pure functions of the input (their results may be shared)
_PURE_INPUTS = (_identity, positive_part, negative_part)


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


class _Term:
    """Term k of the signed sum: sign s_k, modified input x_k and (until stacked) weight W_k."""

    __slots__ = ("index", "sign", "input", "weight")

    def __init__(self, index: int, sign: int, x_k: torch.Tensor):
        self.index, self.sign, self.input = index, sign, x_k
        self.weight: torch.Tensor | None = None


class _Group:
    """Terms sharing one factor φ, their weights stacked on axis 1 once the group is first used.

    A masked group (Gamma's pair of terms ``pair``) has ``factor`` None and a ``mask`` until
    relevance first reaches the mask; then φ is made (and the mask dropped).
    """

    __slots__ = ("terms", "factor", "mask", "pair", "weight", "sizes", "constant", "like")

    def __init__(self, terms: list[_Term], factor=None, mask=None, pair=None):
        self.terms = terms
        self.factor, self.mask, self.pair = factor, mask, pair
        self.weight: torch.Tensor | None = None
        self.sizes: list[int] = []
        self.constant = False  # whether the last stacked weight is the folded constant terms'
        self.like: torch.Tensor | None = None  # a broadcast zero shaped like the VJP's result


class LinearTerms:
    """What a re-run of ``rule`` on one call of a plain linear layer needs (see module doc).

    Build it with ``LinearTerms(rule, call)`` when ``applies(rule, call)``; then
    ``relevance(R)`` is the rule's relevance at the input for the relevance ``R`` at the output.
    """

    def __init__(self, rule: BasicHook, call: ModuleCall, partials: dict | None = None):
        module, (x,) = call.module, call.inputs
        self.module, self.input_shape = module, x.shape
        self._rule, self._call, self._partials = rule, call, partials
        self._shape = call.output_shapes[0]
        self._weight = module._parameters["weight"]
        self._weight_version = self._weight._version
        self._bias = module._parameters.get("bias")
        with torch.no_grad():
            self._terms = [self._term(k, x) for k in range(len(rule.input_modifiers))]
            split = getattr(rule.gradient_mapper, "sign_split", None)
            self.groups = self._sign_groups(split) if split else self._factor_groups(x)

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
            if group.factor is None:
                gamma = grad * group.mask
                if not nonzero(gamma):
                    continue  # e.g. Gamma's z < 0 pair after a ReLU: exactly zero
                with torch.no_grad():
                    group.factor = self._pair(*group.pair, group.mask)
                group.mask = None
                gamma.mul_(group.factor)  # (R ⊙ m) ⊙ φ = R ⊙ φ, as φ = m ⊙ φ with m in {0, 1}
            else:
                gamma = grad * group.factor
                if several and not nonzero(gamma):
                    continue
            if group.weight is None:
                self._stack(group)
            vjp = self._input_vjp(gamma, group)
            del gamma
            if len(group.sizes) == 1:
                parts = (vjp,)
            else:
                parts = vjp.split(group.sizes, dim=vjp.ndim - 1 if self._dense else 1)
            for term, v_k in zip(group.terms, parts[: len(group.terms)], strict=True):
                if result is None:
                    result = torch.mul(v_k, term.input)
                    if term.sign < 0:
                        result.neg_()
                else:
                    result.addcmul_(v_k, term.input, value=term.sign)
            if group.constant:  # the folded constant-input terms, signs included
                v_c = parts[-1]
                result = v_c.contiguous() if result is None else result.add_(v_c)
        if result is None:
            return torch.zeros(self.input_shape, dtype=grad.dtype, device=grad.device)
        return result

    # --- building ---
    def _term(self, k: int, x: torch.Tensor) -> _Term | None:
        """Term k with its modified input, or None when it vanishes (see ``term_vanishes``)."""
        modify = self._rule.input_modifiers[k]
        partials = self._partials
        if partials is not None and modify in _PURE_INPUTS:
            key = ("input", modify)
            x_k = partials.get(key)
            if x_k is None:
                x_k = partials[key] = modify(x)
        else:
            x_k = modify(x)
        if term_vanishes(self._rule, self.module, k, [x_k]):
            return None
        return _Term(k, self._rule._term_signs[k], x_k)

    def _factor_groups(self, x: torch.Tensor) -> list[_Group]:
        """Groups by the factors φ_k = mapper(1, (y_1..y_K)) (terms sharing a factor share γ)."""
        outputs = tuple(self._output(k, weight=True) for k in range(len(self._terms)))
        ones = torch.ones(self._shape, dtype=x.dtype, device=x.device)
        factors = map_relevance(self._rule, ones, outputs)
        del outputs
        groups: dict[int, _Group] = {}
        for term, factor in zip(self._terms, factors, strict=True):
            if term is None or factor is None or term.sign == 0:
                continue  # a vanished or unweighted term adds nothing to the signed sum
            groups.setdefault(id(factor), _Group([], factor)).terms.append(term)
        for group in groups.values():
            self._stack(group)
        return list(groups.values())

    def _sign_groups(self, split: tuple) -> list[_Group]:
        """Gamma's two pairs, masked by the sign of z (see the module doc); φ made on first use."""
        sign_term, *pairs = split
        z = self._output(sign_term)
        groups = []
        for (a, b), positive in zip(pairs, (True, False), strict=True):
            terms = [t for t in (self._terms[a], self._terms[b]) if t is not None and t.sign != 0]
            if terms:
                mask = self._mask(z, positive)
                groups.append(_Group(terms, mask=mask, pair=(a, b)))
        return groups

    def _pair(self, a: int, b: int, mask: torch.Tensor) -> torch.Tensor:
        """φ = mask / stab(y_a + y_b), as Gamma's mapper computes it for R = 1."""
        total = add_terms(self._output(a, weight=True), self._output(b, weight=True))
        stabilize = self._rule._stabilize
        denominator = stabilize(total)
        if type(stabilize) is Stabilizer:  # its result is a new tensor: divide in place
            return torch.div(mask, denominator, out=denominator)
        return mask / denominator

    def _mask(self, z: torch.Tensor, positive: bool) -> torch.Tensor:
        """[z > 0] (or [z < 0]) in z's dtype, kept in ``partials`` when given."""
        partials = self._partials
        key = ("mask", positive, self._weight_version)
        mask = None if partials is None else partials.get(key)
        if mask is None:
            mask = (z > 0 if positive else z < 0).to(z.dtype)
            if partials is not None:
                partials[key] = mask
        return mask

    def _output(self, k: int, weight: bool = False) -> torch.Tensor:
        """y_k (a broadcast zero for a vanished term); with ``weight`` also sets W_k."""
        term = self._terms[k]
        if term is None:
            return broadcast_zeros(self._shape, self._call.inputs[0])
        rule, call, module = self._rule, self._call, self.module
        modify, param_mod = rule.input_modifiers[k], rule.param_modifiers[k]
        pure = self._partials is not None and modify in _PURE_INPUTS
        basis = _decompose(param_mod) if pure else None
        with param_mod(module):
            if weight:
                term.weight = module._parameters["weight"].detach()
            if rule._identity_terms[k] and call.outputs_unchanged():
                return call.outputs[0].detach()
            if basis is not None:
                with_bias = "bias" not in param_mod.zero_params
                return self._combine(basis, with_bias, modify, term.input)
            (y_k,) = call.rerun([term.input])
            return y_k

    def _stack(self, group: _Group) -> None:
        """The group's weights stacked along the input axis (terms without one get theirs).

        Terms whose input is a constant c per input channel (a broadcast, such as ZBox's bounds)
        fold into one weight: Σ s_k c_k ⊙ (W_kᵀ⋆γ) = (Σ s_k c_k W_k)ᵀ⋆γ, stacked last.
        """
        varying, constant = [], None
        for term in group.terms:
            if term.weight is None:
                with self._rule.param_modifiers[term.index](self.module):
                    term.weight = self.module._parameters["weight"].detach()
            weight, term.weight = term.weight, None
            c = _channel_constant(term.input, self._dense)
            if c is None:
                varying.append((term, weight))
                continue
            scale = c.mul(term.sign).reshape(1, -1, *(1,) * (weight.ndim - 2))
            constant = weight * scale if constant is None else constant.addcmul_(weight, scale)
        group.terms = [term for term, _ in varying]
        weights = [weight for _, weight in varying]
        group.constant = constant is not None
        if constant is not None:
            weights.append(constant)
        group.sizes = [w.shape[1] for w in weights]
        group.weight = weights[0] if len(weights) == 1 else torch.cat(weights, dim=1)

    def _combine(self, basis: list, with_bias: bool, modify, x_k: torch.Tensor) -> torch.Tensor:
        """y_k = Σ_j c_j (x_k ⋆ B_j(W) + B_j(b)) (W, b: the original parameters; without the
        bias terms unless ``with_bias``), from partial outputs taken from or added to
        ``partials``. A single partial output is returned itself when the rule's stabilizer is
        the built-in one (the mappers then only read y_k)."""
        parts = [(c, self._partial(modify, bounds, with_bias, x_k)) for c, bounds in basis]
        (first, y_k), *rest = parts
        if first == 1 and not rest:
            return y_k if type(self._rule._stabilize) is Stabilizer else y_k.clone()
        if first == 1:
            (second, part), *rest = rest
            y_k = torch.add(y_k, part, alpha=second)
        else:
            y_k = y_k * first
        for coefficient, part in rest:
            y_k.add_(part, alpha=coefficient)
        return y_k

    def _partial(self, modify, bounds, with_bias: bool, x_k: torch.Tensor) -> torch.Tensor:
        """x_k ⋆ B(W) (+ B(b) ``with_bias``), B the identity (``bounds`` None) or a clamp."""
        call, bias = self._call, self._bias if with_bias else None
        if bounds is None and bias is not None and x_k is call.inputs[0]:
            if call.outputs_unchanged():
                return call.outputs[0].detach()  # the layer's own output W⋆x + b
        versions = (self._weight_version, None if bias is None else bias._version)
        key = (modify, bounds, bias is not None, versions)  # stale once a parameter changed
        part = self._partials.get(key)
        if part is None:

            def modified(param: torch.Tensor) -> torch.Tensor:
                param = param.detach()
                return param if bounds is None else param.clamp(min=bounds[0], max=bounds[1])

            weight = modified(self._weight)
            part = self._forward(x_k, weight, None if bias is None else modified(bias))
            self._partials[key] = part
        return part

    # --- the linear map ---
    def _forward(self, x: torch.Tensor, weight: torch.Tensor, bias=None) -> torch.Tensor:
        if self._dense:
            return nn.functional.linear(x, weight, bias)
        return self.module._conv_forward(x, weight, bias)

    @property
    def _dense(self) -> bool:
        return type(self.module) is nn.Linear

    def _input_vjp(self, gamma: torch.Tensor, group: _Group) -> torch.Tensor:
        """W⋆ᵀγ with the group's stacked weight W: the gradient of that layer at its input."""
        weight = group.weight
        if self._dense:
            return gamma.matmul(weight)
        module = self.module
        if group.like is None:
            shape = (self.input_shape[0], weight.shape[1], *self.input_shape[2:])
            # only the input's shape matters for the VJP of a linear map: a broadcast zero
            group.like = torch.zeros((), dtype=weight.dtype, device=weight.device).expand(shape)
        (vjp, _, _) = torch.ops.aten.convolution_backward(
            gamma,
            group.like,
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


def _channel_constant(x: torch.Tensor, dense: bool) -> torch.Tensor | None:
    """The values c (one per input channel) of an ``x`` that is constant along every other axis,
    told by its strides (a broadcast); None otherwise."""
    if x.ndim < 2:
        return None
    axis = x.ndim - 1 if dense else 1
    if any(stride != 0 for i, stride in enumerate(x.stride()) if i != axis):
        return None
    return x[(0,) * axis][(slice(None), *(0,) * (x.ndim - axis - 1))]


def _decompose(param_mod: ParamMod) -> list[tuple[float, tuple | None]] | None:
    """The weight ``param_mod`` makes, as [(c_j, B_j)] meaning Σ_j c_j B_j(W) with B_j the
    identity (None) or a clamp to (min, max); None for other modifiers."""
    if param_mod.param_keys is not None or "weight" in param_mod.zero_params:
        return None
    kind = type(param_mod)
    if kind is NoMod or (kind is ParamMod and param_mod.modifier is param_identity):
        return [(1.0, None)]
    if kind is ClampMod:
        return [(1.0, (param_mod.min, param_mod.max))]
    if kind is GammaMod:
        return [(1.0, None), (param_mod.gamma, (param_mod.min, param_mod.max))]
    return None
