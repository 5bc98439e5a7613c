"""Token inputs: explain a model that takes token ids through its input embeddings.

Relevance is computed with respect to the input embeddings (shape ``(N, L, H)``); the relevance
of a token is the sum over the hidden dimension. ``EmbeddingModel`` turns a Hugging Face style
model (any module with ``get_input_embeddings()`` that accepts ``inputs_embeds=``) into the map
embeddings → logits of one position, which every attributor can explain::

    wrapped = EmbeddingModel(model, position=-1)
    embeddings = wrapped.embed(input_ids)
    with Gradient(wrapped, AttnLRP()) as attributor:
        logits, relevance = attributor(embeddings, target_seed(wrapped(embeddings), token_id))
    token_relevance(relevance)  # (N, L)

``explain_tokens`` does these steps for targets given by class index, next-token id or top-k.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = [
    "EmbeddingModel",
    "TokenExplanation",
    "explain_tokens",
    "target_seed",
    "token_relevance",
]


class EmbeddingModel(nn.Module):
    """Embeddings ``(N, L, H)`` → logits ``(N, C)`` of the token at ``position``.

    Parameters
    ----------
    model:
        A module that accepts ``inputs_embeds=`` and returns logits ``(N, L, C)`` (or ``(N, C)``
        for sequence classifiers), as a tensor, a tuple or an object with ``.logits``.
    position:
        The sequence position whose logits are explained (ignored for ``(N, C)`` outputs).
    **model_kwargs:
        Passed to every call of ``model`` (e.g. ``attention_mask``).
    """

    def __init__(self, model: nn.Module, position: int = -1, **model_kwargs: Any) -> None:
        super().__init__()
        if not callable(getattr(model, "get_input_embeddings", None)):
            raise TypeError(
                f"model: {type(model).__name__} has no get_input_embeddings(); wrap a model with "
                "an input embedding (Hugging Face style), or explain its embeddings directly"
            )
        self.model = model
        self.position = position
        self.model_kwargs = model_kwargs
        self.train(model.training)  # the wrapper is in the model's mode (eval for explaining)

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """The (detached) input embeddings of ``input_ids`` ``(N, L)``."""
        if not isinstance(input_ids, torch.Tensor) or input_ids.dtype not in (
            torch.long,
            torch.int,
        ):
            raise TypeError("input_ids must be an integer tensor of token ids, shape (N, L)")
        with torch.no_grad():
            return self.model.get_input_embeddings()(input_ids).detach()

    def forward(self, inputs_embeds: torch.Tensor) -> torch.Tensor:
        """The logits of the token at ``position``, shape ``(N, C)``."""
        output = self.model(inputs_embeds=inputs_embeds, **self.model_kwargs)
        logits = getattr(output, "logits", output)
        if isinstance(logits, tuple | list):
            logits = logits[0]
        if not isinstance(logits, torch.Tensor):
            raise TypeError(f"model returned {type(output).__name__} without logits")
        return logits[:, self.position] if logits.ndim == 3 else logits


def target_seed(
    logits: torch.Tensor, targets: int | Sequence[int] | torch.Tensor | None = None, top_k: int = 0
) -> torch.Tensor:
    """One-hot output relevance ``(N, C)`` (times the logit, so that relevance sums to it).

    ``targets``: a class index or next-token id per sample (an int for all); None with
    ``top_k = 0``: the predicted token; ``top_k > 0``: the ``k`` highest logits together.
    """
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape (N, C), got {tuple(logits.shape)}")
    logits = logits.detach()
    mask = torch.zeros_like(logits)
    if top_k:
        if targets is not None:
            raise ValueError("give either targets or top_k, not both")
        mask.scatter_(1, logits.topk(int(top_k), dim=1).indices, 1.0)
    else:
        if targets is None:
            index = logits.argmax(dim=1)
        else:
            index = torch.as_tensor(targets, device=logits.device).long().reshape(-1)
            index = index.expand(logits.shape[0]) if index.numel() == 1 else index
        if index.numel() != logits.shape[0] or not ((index >= 0) & (index < logits.shape[1])).all():
            raise ValueError(
                f"targets must be one index in [0, {logits.shape[1]}) per sample, got {targets!r}"
            )
        mask.scatter_(1, index[:, None], 1.0)
    return mask * logits


def token_relevance(relevance: torch.Tensor) -> torch.Tensor:
    """Relevance per token: the sum of embedding relevance ``(N, L, H)`` over ``H``."""
    return relevance.sum(dim=-1)


@dataclass
class TokenExplanation:
    """``tokens`` ``(N, L)`` relevance per token, ``embeddings`` ``(N, L, H)`` relevance,
    ``logits`` ``(N, C)`` and ``seed`` ``(N, C)`` the explained output relevance."""

    tokens: torch.Tensor
    embeddings: torch.Tensor
    logits: torch.Tensor
    seed: torch.Tensor


def explain_tokens(
    model: nn.Module,
    input_ids: torch.Tensor,
    composite: Any = None,
    targets: int | Sequence[int] | torch.Tensor | None = None,
    top_k: int = 0,
    position: int = -1,
    **model_kwargs: Any,
) -> TokenExplanation:
    """Explain the logits of ``position`` of a token model (see ``target_seed`` for targets)."""
    from .attribution import Gradient

    wrapped = EmbeddingModel(model, position, **model_kwargs)
    embeddings = wrapped.embed(input_ids)
    with torch.no_grad():
        seed = target_seed(wrapped(embeddings), targets, top_k)
    with Gradient(wrapped, composite) as attributor:
        logits, relevance = attributor(embeddings, lambda out: seed.to(out.dtype))
    return TokenExplanation(token_relevance(relevance), relevance, logits, seed)
