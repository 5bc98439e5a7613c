"""Rules on captured functional operations: attention, norms, residual sums, gates, activations.

Composites with op rules (:mod:`lrp_core.op_composites`) capture calls of functional operations
during the forward pass (``torch.matmul``, ``F.softmax``, ``x + f(x)``, ...) and run each
through an op rule. An op rule changes how relevance ``R`` flows backward through one call.
Every rule is stated here in relevance form (``x`` inputs, ``y`` output, ``R`` relevance at the
output, sums over the reduced axes); the engine applies it in the equivalent gradient × input
form (``R = x ⊙ g``, see :mod:`lrp_core._engine.functions`), so that linear operations without
a rule (views, scalings, masks, rotary embeddings) follow the z-rule ``R_x = x ⊙ Jᵀ(R / y)``.

An operand *carries relevance* when it depends on the explained input; a product or sum with a
constant operand is linear in the other operand (no split).
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from ._engine import (
    ACTIVATION_TAG,
    OpCall,
    carries,
    epsilon_gradient,
    identity_gradient,
    normalized_gradient,
    scale_gradient,
)

__all__ = [
    "ActivationIdentity",
    "BilinearUniform",
    "ElementwiseIdentity",
    "LinearEpsilon",
    "LinearGamma",
    "NormIdentity",
    "OpPass",
    "OpRule",
    "ProductGateStop",
    "ProductUniform",
    "ResidualEpsilon",
    "SoftmaxConstant",
    "SoftmaxDeepTaylor",
]

_MATMULS = ("matmul", "linear", "addmm")


def _check_epsilon(epsilon: Any) -> float:
    if isinstance(epsilon, bool) or not isinstance(epsilon, int | float) or not epsilon >= 0:
        raise ValueError(f"epsilon must be a number >= 0, got {epsilon!r}")
    return float(epsilon)


def _epsilon_output(output: Any, epsilon: float) -> Any:
    if isinstance(output, torch.Tensor) and carries(output):
        return epsilon_gradient(output, epsilon)
    return output


class OpRule:
    """Base of the rules on captured operations.

    ``ops`` lists the operation types the rule applies to; ``apply(call)`` runs the captured
    ``OpCall`` with the rule and returns its output. The default passes relevance on as the
    plain gradient × input does (z-rule). Rules used on whole modules implement ``join``.
    """

    ops: tuple[str, ...] = ()
    #: on a whole module: its output counts as an activation (a gate, for ``ProductGateStop``)
    marks_activation: bool = False

    def apply(self, call: OpCall) -> Any:
        """Run ``call`` with this rule; return the output the model receives."""
        return call.run()

    def join(self, input: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        """Join a module's ``output`` (computed from a detached ``input``) to ``input``."""
        raise TypeError(f"{type(self).__name__} cannot be used as a rule on a whole module")

    def hyperparameters(self) -> dict[str, Any]:
        """The constructor keywords of this rule."""
        return {}

    def copy(self) -> OpRule:
        """A fresh copy of this rule."""
        return copy.copy(self)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({params})"


class OpPass(OpRule):
    """No rule of its own: ``R_x = x ⊙ Jᵀ(R / y)`` (for ``cat``/``stack``: each part keeps the
    relevance of its slice)."""

    ops = ("cat", "stack", "add", "mul", "matmul", "linear", "addmm", "activation", "softmax")


class LinearEpsilon(OpRule):
    """Epsilon rule on a linear map ``y = x Wᵀ + b`` (``linear``, ``addmm``, a matmul with one
    relevance-carrying operand): ``R_x = x ⊙ Wᵀ(R / (y + ε·sign(y)))``, sign(0) = 1.

    ``epsilon = 0`` is the z-rule (LRP-0), the bias absorbing its share.
    """

    ops = _MATMULS

    def __init__(self, epsilon: float = 1e-6) -> None:
        self.epsilon = _check_epsilon(epsilon)

    def hyperparameters(self) -> dict[str, Any]:
        return {"epsilon": self.epsilon}

    def apply(self, call: OpCall) -> Any:
        return _epsilon_output(call.run(), self.epsilon)


class LinearGamma(OpRule):
    """Gamma rule on a linear map (AttnLRP's vision experiments): with ``W_γ = W + γW⁺``,
    ``b_γ = b + γb⁺`` and ``z_γ = x W_γᵀ + b_γ``, ``R_x = x ⊙ W_γᵀ(R / (z_γ + ε·sign(z_γ)))``
    (``linear`` and ``addmm``; for other products it is ``LinearEpsilon``)."""

    ops = ("linear", "addmm")

    def __init__(self, gamma: float = 0.25, epsilon: float = 1e-6) -> None:
        if isinstance(gamma, bool) or not isinstance(gamma, int | float) or not gamma >= 0:
            raise ValueError(f"gamma must be a number >= 0, got {gamma!r}")
        self.gamma, self.epsilon = float(gamma), _check_epsilon(epsilon)

    def hyperparameters(self) -> dict[str, Any]:
        return {"gamma": self.gamma, "epsilon": self.epsilon}

    def apply(self, call: OpCall) -> Any:
        output = call.run()
        input, weight = call.operands
        if not carries(input) or carries(weight):
            return _epsilon_output(output, self.epsilon)
        bias_slot = (2, "bias") if call.op == "linear" else (0, "input")
        bias = call.argument(*bias_slot)
        weight = weight + self.gamma * weight.clamp(min=0)
        overrides = {}
        if isinstance(bias, torch.Tensor):
            overrides = {"bias_value": bias + self.gamma * bias.clamp(min=0)}
        modified = _run_with_bias(call, input, weight, bias_slot, overrides.get("bias_value"))
        detached = modified.detach()
        sign = torch.where(detached >= 0, 1.0, -1.0).to(detached.dtype)
        factor = output.detach() / (detached + self.epsilon * sign)
        carried = modified * factor
        return carried + (output.detach() - carried.detach())


def _run_with_bias(call: OpCall, input, weight, slot: tuple[int, str], bias: Any) -> torch.Tensor:
    args, kwargs = call.spec.replace(call.args, call.kwargs, [input, weight])
    if bias is not None:
        position, keyword = slot
        if position < len(args):
            args = (*args[:position], bias, *args[position + 1 :])
        else:
            kwargs = {**kwargs, keyword: bias}
    return call.func(*args, **kwargs)


class BilinearUniform(OpRule):
    """Bilinear matrix product ``Y = A B`` of two relevance-carrying operands (AttnLRP): the
    epsilon rule, its relevance split uniformly between both operands,
    ``R_A = ½ A ⊙ ((R / (Y + ε·sign(Y))) Bᵀ)``, ``R_B = ½ B ⊙ (Aᵀ (R / (Y + ε·sign(Y))))``.
    With one relevance-carrying operand the product is linear: ``LinearEpsilon``.
    """

    ops = _MATMULS

    def __init__(self, epsilon: float = 0.0) -> None:
        self.epsilon = _check_epsilon(epsilon)

    def hyperparameters(self) -> dict[str, Any]:
        return {"epsilon": self.epsilon}

    def apply(self, call: OpCall) -> Any:
        operands = list(call.operands)
        if len(operands) == 2 and all(carries(t) for t in operands):
            operands = [scale_gradient(t, 0.5) for t in operands]
        return _epsilon_output(call.run(*operands), self.epsilon)


class ProductUniform(OpRule):
    """Element-wise product ``y = a ⊙ b`` of two relevance-carrying operands (a gate): uniform
    split, ``R_a = R_b = ½ R``. A product with a constant is linear: ``R_a = R``."""

    ops = ("mul",)

    def apply(self, call: OpCall) -> Any:
        operands = list(call.operands)
        if len(operands) == 2 and all(carries(t) for t in operands):
            operands = [scale_gradient(t, 0.5) for t in operands]
        return call.run(*operands)


class ProductGateStop(OpRule):
    """CP-LRP's gate: in ``y = a ⊙ b`` the operand produced by an element-wise activation (the
    gate) gets no relevance, the other all of it: ``R_gate = 0``, ``R_other = R``. If neither
    or both operands come from an activation, the split is uniform (``ProductUniform``)."""

    ops = ("mul",)

    def apply(self, call: OpCall) -> Any:
        operands = list(call.operands)
        if len(operands) != 2 or not all(carries(t) for t in operands):
            return call.run()
        gates = [getattr(t, ACTIVATION_TAG, False) for t in operands]
        if gates[0] != gates[1]:
            return call.run(*[t.detach() if g else t for t, g in zip(operands, gates, strict=True)])
        return call.run(*[scale_gradient(t, 0.5) for t in operands])


class ResidualEpsilon(OpRule):
    """Sum ``y = a + b`` (a residual connection): the epsilon rule over the summands,
    ``R_a = a ⊙ R / (y + ε·sign(y))``, ``R_b = b ⊙ R / (y + ε·sign(y))``. With ``ε = 0`` it
    conserves exactly, so ``x + f(x)`` written in ``forward`` needs no canonizer."""

    ops = ("add",)

    def __init__(self, epsilon: float = 0.0) -> None:
        self.epsilon = _check_epsilon(epsilon)

    def hyperparameters(self) -> dict[str, Any]:
        return {"epsilon": self.epsilon}

    def apply(self, call: OpCall) -> Any:
        return _epsilon_output(call.run(), self.epsilon)


class SoftmaxDeepTaylor(OpRule):
    """Softmax ``s = softmax(x)`` (AttnLRP): Deep Taylor decomposition with the bias dropped,
    ``R_x = x ⊙ (R − s ⊙ ΣR)`` (sum over the softmax axis); masked entries (``x = −∞``) get 0.
    For ``log_softmax``: ``R_x = x ⊙ (R/y − s ⊙ Σ R/y)``."""

    ops = ("softmax", "log_softmax")


class SoftmaxConstant(OpRule):
    """CP-LRP's attention: the softmax output is held constant, so no relevance flows through
    queries and keys, ``R_x = 0``; the product with the values is then linear in the values."""

    ops = ("softmax", "log_softmax")

    def apply(self, call: OpCall) -> Any:
        return call.run().detach()


class ElementwiseIdentity(OpRule):
    """Identity rule for an element-wise function ``y = f(x)`` (activations; also usable on a
    whole module of the same input and output shape, e.g. a hand-written RMSNorm or GELU):
    ``R_x = R``."""

    ops = ("activation",)

    def apply(self, call: OpCall) -> Any:
        (input,) = call.operands
        inplace = call.kwargs.get("inplace", False) or any(a is True for a in call.args[1:])
        detached = input.detach().clone() if inplace else input.detach()
        return identity_gradient(input, call.run(detached))

    def join(self, input: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        if output.shape != input.shape:
            raise ValueError(
                f"{type(self).__name__} on a module needs an output of the input's shape, got "
                f"{tuple(output.shape)} from {tuple(input.shape)}; give that module another rule"
            )
        return identity_gradient(input, output)


class ActivationIdentity(ElementwiseIdentity):
    """``ElementwiseIdentity`` for activation modules (e.g. a hand-written GELU): ``R_x = R``;
    the module's output counts as an activation, so ``ProductGateStop`` finds it as a gate."""

    marks_activation = True


class NormIdentity(OpRule):
    """``layer_norm``/``rms_norm``: the identity rule on the division by the standard deviation
    σ, the rest linear. With ``σ`` held constant the norm is the linear map
    ``y = w ⊙ (x − μ(x))/σ + b`` (``rms_norm``: ``y = w ⊙ x/σ``), and
    ``R_x = x ⊙ Jᵀ(R / y)`` of that map: ``rms_norm`` gives ``R_x = R ⊙ (y − b)/y = R``; for
    ``layer_norm`` ``R_x = x ⊙ (v − mean(v))`` with ``v = w ⊙ (R / y)/σ``.
    """

    ops = ("layer_norm", "rms_norm")

    def apply(self, call: OpCall) -> Any:
        (input,) = call.operands
        detached = input.detach()
        output = call.run(detached)
        shape = call.argument(1, "normalized_shape")
        weight = call.argument(2, "weight")
        dims = tuple(range(-len(shape), 0))
        if call.op == "layer_norm":
            eps = call.argument(4, "eps", 1e-5)
            variance = detached.var(dim=dims, unbiased=False, keepdim=True)
        else:
            eps = call.argument(3, "eps", None)
            eps = torch.finfo(detached.dtype).eps if eps is None else eps
            variance = detached.pow(2).mean(dim=dims, keepdim=True)
        rstd = torch.rsqrt(variance + eps)
        weight = None if weight is None else weight.detach()
        return normalized_gradient(input, output, rstd, weight, len(dims), call.op == "layer_norm")
