"""The table of captured operations: which torch functions are seen, their type and operands.

Each entry maps a torch function (as a ``TorchFunctionMode`` receives it) to an ``OpSpec``: the
operation type used in rule addresses (``"matmul"``, ``"softmax"``, ...) and where its tensor
operands sit (positional index and keyword name). ``OpCall`` is one captured call: its stable name,
its operands, and ``run`` to call the function again with other operands.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class OpSpec:
    """Operation type and operand slots ``((position, keyword), ...)`` of one torch function."""

    op: str
    slots: tuple[tuple[int, str], ...]

    def operands(self, args: tuple, kwargs: dict) -> list | None:
        """The operand tensors of a call, or None if a slot holds no tensor."""
        found = []
        for position, keyword in self.slots:
            value = args[position] if position < len(args) else kwargs.get(keyword)
            if not isinstance(value, torch.Tensor):
                return None
            found.append(value)
        return found

    def replace(self, args: tuple, kwargs: dict, operands: Sequence) -> tuple[tuple, dict]:
        """``(args, kwargs)`` with the operand slots holding ``operands``."""
        args, kwargs = list(args), dict(kwargs)
        for (position, keyword), value in zip(self.slots, operands, strict=True):
            if position < len(args):
                args[position] = value
            else:
                kwargs[keyword] = value
        return tuple(args), kwargs


class _EinsumSpec(OpSpec):
    """``einsum(equation, a, b)`` or ``einsum(equation, [a, b])``: exactly two operands."""

    def operands(self, args: tuple, kwargs: dict) -> list | None:
        tensors = (
            list(args[1]) if len(args) == 2 and isinstance(args[1], list | tuple) else args[1:]
        )
        if len(tensors) != 2 or not all(isinstance(t, torch.Tensor) for t in tensors):
            return None
        return list(tensors)

    def replace(self, args: tuple, kwargs: dict, operands: Sequence) -> tuple[tuple, dict]:
        return (args[0], *operands), kwargs


class _SequenceSpec(OpSpec):
    """``cat``/``stack``: the tensors of the first argument are the operands."""

    def operands(self, args: tuple, kwargs: dict) -> list | None:
        tensors = args[0] if args else kwargs.get("tensors")
        if not isinstance(tensors, list | tuple) or not tensors:
            return None
        return list(tensors) if all(isinstance(t, torch.Tensor) for t in tensors) else None

    def replace(self, args: tuple, kwargs: dict, operands: Sequence) -> tuple[tuple, dict]:
        if args:
            return (list(operands), *args[1:]), kwargs
        return args, {**kwargs, "tensors": list(operands)}


def _binary(op: str) -> OpSpec:
    return OpSpec(op, ((0, "input"), (1, "other")))


def _unary(op: str) -> OpSpec:
    return OpSpec(op, ((0, "input"),))


#: element-wise activation functions (the identity rule applies to each)
ACTIVATIONS = (
    F.gelu,
    F.silu,
    F.relu,
    F.elu,
    F.selu,
    F.celu,
    F.leaky_relu,
    F.mish,
    F.softplus,
    F.hardswish,
    F.hardtanh,
    F.relu6,
    F.tanh,
    F.sigmoid,
    torch.tanh,
    torch.sigmoid,
    torch.relu,
    torch.Tensor.tanh,
    torch.Tensor.sigmoid,
    torch.Tensor.relu,
)

_TABLE: dict[Any, OpSpec] = {
    F.linear: OpSpec("linear", ((0, "input"), (1, "weight"))),
    torch.addmm: OpSpec("addmm", ((1, "mat1"), (2, "mat2"))),
    torch.Tensor.addmm: OpSpec("addmm", ((1, "mat1"), (2, "mat2"))),
    torch.matmul: _binary("matmul"),
    torch.Tensor.matmul: _binary("matmul"),
    torch.Tensor.__matmul__: _binary("matmul"),
    torch.bmm: OpSpec("matmul", ((0, "input"), (1, "mat2"))),
    torch.Tensor.bmm: OpSpec("matmul", ((0, "input"), (1, "mat2"))),
    torch.einsum: _EinsumSpec("matmul", ()),
    torch.baddbmm: OpSpec("matmul", ((1, "batch1"), (2, "batch2"))),
    torch.Tensor.baddbmm: OpSpec("matmul", ((1, "batch1"), (2, "batch2"))),
    F.softmax: _unary("softmax"),
    torch.softmax: _unary("softmax"),
    torch.Tensor.softmax: _unary("softmax"),
    F.log_softmax: _unary("log_softmax"),
    torch.log_softmax: _unary("log_softmax"),
    torch.Tensor.log_softmax: _unary("log_softmax"),
    F.scaled_dot_product_attention: OpSpec("attention", ((0, "query"), (1, "key"), (2, "value"))),
    F.multi_head_attention_forward: OpSpec(
        "multi_head_attention", ((0, "query"), (1, "key"), (2, "value"))
    ),
    F.layer_norm: _unary("layer_norm"),
    F.rms_norm: _unary("rms_norm"),
    torch.mul: _binary("mul"),
    torch.Tensor.mul: _binary("mul"),
    torch.Tensor.__mul__: _binary("mul"),
    torch.add: _binary("add"),
    torch.Tensor.add: _binary("add"),
    torch.Tensor.__add__: _binary("add"),
    torch.cat: _SequenceSpec("cat", ()),
    torch.concat: _SequenceSpec("cat", ()),
    torch.stack: _SequenceSpec("stack", ()),
}
_TABLE.update({function: _unary("activation") for function in ACTIVATIONS})

#: every operation type that can be captured
OP_TYPES = tuple(sorted({spec.op for spec in _TABLE.values()}))


def spec_of(func: Any) -> OpSpec | None:
    """The ``OpSpec`` of a torch function, or None if it is not captured."""
    try:
        return _TABLE.get(func)
    except TypeError:  # unhashable callables
        return None


def carries(tensor: Any) -> bool:
    """Whether ``tensor`` carries relevance: it depends on the explained input (requires grad
    while the model's parameters are frozen for the captured forward)."""
    return isinstance(tensor, torch.Tensor) and tensor.requires_grad


@dataclass
class OpCall:
    """One captured call: ``name`` (``"<module>:<op>#<k>"``), ``op`` type, enclosing ``module``,
    the torch ``func`` with its ``args``/``kwargs``, and its tensor ``operands``."""

    name: str
    op: str
    module: str
    func: Any
    spec: OpSpec
    args: tuple
    kwargs: dict
    operands: list = field(default_factory=list)
    #: context manager factory that switches capture on again inside the call (or None)
    reenter: Any = None

    @property
    def carrying(self) -> list[bool]:
        """For each operand, whether it carries relevance."""
        return [carries(t) for t in self.operands]

    def run(self, *operands: torch.Tensor, **overrides: Any) -> Any:
        """Call the function again with ``operands`` (default: the call's own) and keyword
        ``overrides``."""
        args, kwargs = self.spec.replace(self.args, self.kwargs, operands or self.operands)
        return self.func(*args, **{**kwargs, **overrides})

    def argument(self, position: int, keyword: str, default: Any = None) -> Any:
        """The argument at ``position`` or named ``keyword`` (``default`` if absent)."""
        if position < len(self.args):
            return self.args[position]
        return self.kwargs.get(keyword, default)
