"""Token inputs: relevance w.r.t. the input embeddings, summed over the hidden dimension, with
targets by class index, next-token id or top-k (``lrp_core.tokens``)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lrp_core.attribution import Gradient
from lrp_core.op_composites import AttnLRP
from lrp_core.tokens import EmbeddingModel, explain_tokens, target_seed, token_relevance

D = torch.float64


class TinyTokenModel(nn.Module):
    """Token ids → logits ``(N, L, V)``, Hugging Face style (``get_input_embeddings``,
    ``inputs_embeds=``), with attention written in ``forward``."""

    def __init__(self, vocab=11, hidden=6):
        super().__init__()
        self.embed = nn.Embedding(vocab, hidden)
        self.q, self.k, self.v = (nn.Linear(hidden, hidden) for _ in range(3))
        self.head = nn.Linear(hidden, vocab)

    def get_input_embeddings(self):
        return self.embed

    def forward(self, input_ids=None, inputs_embeds=None, scale=1.0):
        x = self.embed(input_ids) if inputs_embeds is None else inputs_embeds
        scores = self.q(x) @ self.k(x).transpose(-1, -2) * scale
        causal = torch.ones(x.shape[1], x.shape[1], dtype=torch.bool).triu(1)
        x = x + torch.softmax(scores.masked_fill(causal, float("-inf")), -1) @ self.v(x)
        return (self.head(x),)  # a tuple, as with return_dict=False


@pytest.fixture
def model():
    torch.manual_seed(0)
    return TinyTokenModel().to(D).eval()


IDS = torch.tensor([[1, 4, 2, 7, 3], [5, 5, 0, 9, 1]])


def test_explain_tokens_is_the_attribution_of_the_embeddings(model):
    result = explain_tokens(model, IDS, AttnLRP(epsilon=0.0), targets=[3, 8])
    embeddings = model.embed(IDS).detach()
    logits = model(inputs_embeds=embeddings)[0][:, -1]
    seed = torch.zeros(2, 11, dtype=D)
    seed[0, 3], seed[1, 8] = logits[0, 3], logits[1, 8]
    with Gradient(EmbeddingModel(model), AttnLRP(epsilon=0.0)) as attributor:
        _, expected = attributor(embeddings, seed)
    torch.testing.assert_close(result.embeddings, expected)
    torch.testing.assert_close(result.tokens, expected.sum(-1))
    assert result.tokens.shape == (2, 5)
    torch.testing.assert_close(result.seed, seed)
    torch.testing.assert_close(result.logits.detach(), logits.detach())


def test_targets_by_prediction_next_token_and_top_k():
    logits = torch.tensor([[0.5, 2.0, -1.0, 1.5], [3.0, 0.0, 1.0, 2.5]])
    torch.testing.assert_close(
        target_seed(logits), torch.tensor([[0.0, 2.0, 0.0, 0.0], [3.0, 0.0, 0.0, 0.0]])
    )
    torch.testing.assert_close(
        target_seed(logits, 2), torch.tensor([[0.0, 0.0, -1.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
    )
    torch.testing.assert_close(
        target_seed(logits, top_k=2), torch.tensor([[0.0, 2.0, 0.0, 1.5], [3.0, 0.0, 0.0, 2.5]])
    )


def test_position_and_model_keywords(model):
    wrapped = EmbeddingModel(model, position=1, scale=0.5)
    assert not wrapped.training  # in the model's mode
    embeddings = wrapped.embed(IDS)
    expected = model(inputs_embeds=embeddings, scale=0.5)[0][:, 1]
    torch.testing.assert_close(wrapped(embeddings), expected)
    relevance = torch.arange(2 * 5 * 6, dtype=D).reshape(2, 5, 6)
    torch.testing.assert_close(token_relevance(relevance), relevance.sum(-1))


def test_bad_inputs_are_named(model):
    with pytest.raises(TypeError, match="model: Linear has no get_input_embeddings"):
        EmbeddingModel(nn.Linear(2, 2))
    with pytest.raises(TypeError, match="input_ids must be an integer tensor"):
        EmbeddingModel(model).embed(IDS.double())
    with pytest.raises(ValueError, match="targets must be one index in \\[0, 11\\)"):
        explain_tokens(model, IDS, targets=[3, 11])
    with pytest.raises(ValueError, match="either targets or top_k"):
        target_seed(torch.zeros(2, 3), 1, top_k=2)
    with pytest.raises(ValueError, match="logits must have shape"):
        target_seed(torch.zeros(3))
