"""Rules on attention as one captured call: ``scaled_dot_product_attention`` and torch's fused
``multi_head_attention_forward`` (used by ``nn.MultiheadAttention`` and
``nn.TransformerEncoderLayer``).

The fused multi-head attention hides its inner operations from a mode that handles the outer call,
so ``MultiheadAttentionSplit`` re-enters it: it runs the same computation written out (input
projections, scores, mask, softmax, values, output projection) with capture switched on again,
so each piece is captured under the attention module's name and gets the composite's rule for
it, exactly as in a model that writes attention out itself.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from ._engine import OpCall, carries, scale_gradient, spec_of
from .op_rules import BilinearUniform, OpRule, _check_epsilon

__all__ = ["AttentionCP", "AttentionUniform", "MultiheadAttentionSplit", "attention_math"]


class AttentionUniform(OpRule):
    """``scaled_dot_product_attention(q, k, v)`` as AttnLRP explains attention: the scores
    ``q kᵀ`` and the output ``A v`` are bilinear products (``BilinearUniform``) and the softmax
    follows ``SoftmaxDeepTaylor``. With all three carrying relevance and ``ε = 0`` this gives
    ``q`` and ``k`` a quarter and ``v`` half of the plain gradient × input; masks, causal
    masking, scale and grouped-query attention as in the call; dropout is off."""

    ops = ("attention",)

    def __init__(self, epsilon: float = 0.0) -> None:
        self.epsilon = _check_epsilon(epsilon)

    def hyperparameters(self) -> dict[str, Any]:
        return {"epsilon": self.epsilon}

    def apply(self, call: OpCall) -> Any:
        query, key, value = call.operands
        if self.epsilon > 0:
            return attention_math(call, BilinearUniform(self.epsilon))
        scores_carry = carries(query) or carries(key)
        weights_factor = 0.5 if carries(value) else 1.0
        value_factor = 0.5 if scores_carry else 1.0
        query_factor = weights_factor * (0.5 if carries(key) else 1.0)
        key_factor = weights_factor * (0.5 if carries(query) else 1.0)
        return call.run(
            scale_gradient(query, query_factor) if carries(query) else query,
            scale_gradient(key, key_factor) if carries(key) else key,
            scale_gradient(value, value_factor) if carries(value) else value,
            dropout_p=0.0,
        )


class AttentionCP(OpRule):
    """``scaled_dot_product_attention`` as CP-LRP explains it: queries and keys get no relevance
    (the attention weights are held constant), the values get all of it: ``R_v = v ⊙ Aᵀ(R/y)``."""

    ops = ("attention",)

    def apply(self, call: OpCall) -> Any:
        query, key, value = call.operands
        return call.run(query.detach(), key.detach(), value, dropout_p=0.0)


def attention_math(call: OpCall, matmul_rule: OpRule) -> torch.Tensor:
    """``scaled_dot_product_attention`` of ``call`` written out (scores, mask, softmax, values),
    each product under ``matmul_rule``; equal to the fused function in value."""
    query, key, value = call.operands
    mask = call.argument(3, "attn_mask")
    causal = call.argument(5, "is_causal", False)
    scale = call.argument(6, "scale")
    if call.argument(7, "enable_gqa", False) and key.size(-3) != query.size(-3):
        repeat = query.size(-3) // key.size(-3)
        key = key.repeat_interleave(repeat, dim=-3)
        value = value.repeat_interleave(repeat, dim=-3)
    scale = 1.0 / math.sqrt(query.size(-1)) if scale is None else scale
    scores = _product(matmul_rule, query, key.transpose(-2, -1)) * scale
    length, source = query.size(-2), key.size(-2)
    if causal:
        keep = torch.ones(length, source, dtype=torch.bool, device=query.device).tril()
        scores = scores.masked_fill(~keep, float("-inf"))
    if mask is not None:
        scores = (
            scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
        )
    weights = torch.softmax(scores, dim=-1)
    return _product(matmul_rule, weights, value)


def _product(rule: OpRule, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    spec = spec_of(torch.matmul)
    call = OpCall("", "matmul", "", torch.matmul, spec, (a, b), {}, [a, b])
    return rule.apply(call)


class MultiheadAttentionSplit(OpRule):
    """``F.multi_head_attention_forward`` re-entered piece by piece (see the module docstring):
    ``q, k, v = linear(x, W_q), linear(x, W_k), linear(x, W_v)``,
    ``A = softmax(q kᵀ/√d + mask)``, ``y = linear(A v, W_o)``, each call captured with the
    composite's rule. The values equal torch's; ``bias_k``/``bias_v``, ``add_zero_attn`` and
    static keys/values are not supported (a clear error says so). Dropout is off; returned
    attention weights carry no relevance."""

    ops = ("multi_head_attention",)
    #: shapes what is captured (its pieces get their own rules), so a live explanation keeps it
    structural = True

    def apply(self, call: OpCall) -> Any:
        if call.reenter is None:
            raise RuntimeError("MultiheadAttentionSplit needs a captured call to re-enter")
        with call.reenter():
            return multi_head_attention_written_out(call)


def _argument(call: OpCall, position: int, keyword: str, default: Any = None) -> Any:
    return call.argument(position, keyword, default)


def multi_head_attention_written_out(call: OpCall) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The value of ``F.multi_head_attention_forward(*call.args, **call.kwargs)``, written out."""
    query, key, value = call.operands
    heads = _argument(call, 4, "num_heads")
    unsupported = [
        name
        for position, name in ((7, "bias_k"), (8, "bias_v"), (21, "static_k"), (22, "static_v"))
        if _argument(call, position, name) is not None
    ]
    if _argument(call, 9, "add_zero_attn", False):
        unsupported.append("add_zero_attn")
    if unsupported:
        raise NotImplementedError(
            f"multi-head attention with {', '.join(unsupported)} cannot be explained piece by "
            "piece yet; give the call another rule (e.g. OpPass for the plain gradient)"
        )
    batched = query.dim() == 3
    if not batched:
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
    length, batch, embed = query.shape
    source = key.shape[0]
    head_dim = embed // heads
    weights, biases = _projections(call, embed)
    q, k, v = (
        F.linear(x, w, b).reshape(x.shape[0], batch * heads, head_dim).transpose(0, 1)
        for x, w, b in zip((query, key, value), weights, biases, strict=True)
    )
    scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(head_dim))
    scores = _masked(call, scores.view(batch, heads, length, source), batched)
    attention = torch.softmax(scores, dim=-1)
    output = torch.matmul(attention.view(batch * heads, length, source), v)
    output = output.transpose(0, 1).reshape(length * batch, embed)
    output = F.linear(
        output, _argument(call, 11, "out_proj_weight"), _argument(call, 12, "out_proj_bias")
    )
    output = output.view(length, batch, embed)
    if not batched:
        output = output.squeeze(1)
    if not _argument(call, 15, "need_weights", True):
        return output, None
    attention = attention.detach()
    if _argument(call, 23, "average_attn_weights", True):
        attention = attention.mean(dim=1)
    return output, attention if batched else attention.squeeze(0)


def _projections(call: OpCall, embed: int) -> tuple[list, list]:
    if _argument(call, 17, "use_separate_proj_weight", False):
        weights = [_argument(call, 18 + i, f"{n}_proj_weight") for i, n in enumerate("qkv")]
    else:
        weights = list(_argument(call, 5, "in_proj_weight").chunk(3))
    bias = _argument(call, 6, "in_proj_bias")
    return weights, [None] * 3 if bias is None else list(bias.chunk(3))


def _masked(call: OpCall, scores: torch.Tensor, batched: bool) -> torch.Tensor:
    """Scores ``(N, H, L, S)`` with ``attn_mask`` and ``key_padding_mask`` applied (bool masks:
    True is masked out; float masks are added)."""
    batch, heads, length, source = scores.shape
    mask = _argument(call, 16, "attn_mask")
    if mask is not None:
        mask = mask.view(batch, heads, length, source) if mask.dim() == 3 else mask
        scores = _apply_mask(scores, mask)
    padding = _argument(call, 14, "key_padding_mask")
    if padding is not None:
        padding = padding if batched else padding.unsqueeze(0)
        scores = _apply_mask(scores, padding.view(batch, 1, 1, source))
    return scores


def _apply_mask(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    if mask.dtype == torch.bool:
        return scores.masked_fill(mask, float("-inf"))
    return scores + mask.to(scores.dtype)
