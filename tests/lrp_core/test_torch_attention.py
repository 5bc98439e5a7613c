"""torch's own ``nn.MultiheadAttention`` / ``nn.TransformerEncoder``: the fused attention call is
re-entered piece by piece, so it is explained exactly as the same layer written out by hand."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lrp_core.attribution import Gradient
from lrp_core.op_composites import CPLRP, AttnLRP

D = torch.float64


class WrittenOut(nn.Module):
    """The post-norm ``nn.TransformerEncoderLayer`` (ReLU) computed with plain functional calls
    from the same parameters."""

    def __init__(self, layer: nn.TransformerEncoderLayer, heads: int):
        super().__init__()
        self.layer, self.heads = layer, heads

    def attention(self, x, mask):
        attn = self.layer.self_attn
        n, length, embed = x.shape
        hd = embed // self.heads
        q, k, v = F.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
        q, k, v = (t.reshape(n, length, self.heads, hd).transpose(1, 2) for t in (q, k, v))
        scores = q @ k.transpose(-1, -2) / hd**0.5
        if mask is not None:
            scores = scores.masked_fill(mask, float("-inf"))
        out = torch.softmax(scores, -1) @ v
        out = out.transpose(1, 2).reshape(n, length, embed)
        return F.linear(out, attn.out_proj.weight, attn.out_proj.bias)

    def forward(self, x, mask=None):
        layer = self.layer
        x = layer.norm1(x + self.attention(x, mask))
        return layer.norm2(x + layer.linear2(F.relu(layer.linear1(x))))


class Head(nn.Module):
    def __init__(self, body, mask=None):
        super().__init__()
        self.body, self.mask = body, mask
        self.out = nn.Linear(8, 3).to(D)

    def forward(self, x):
        return self.out(self.body(x, self.mask)[:, 0])


@pytest.fixture
def layer():
    torch.manual_seed(0)
    return nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True).to(D).eval()


@pytest.mark.parametrize("composite", [AttnLRP, CPLRP])
@pytest.mark.parametrize("masked", [False, True])
def test_encoder_layer_is_explained_as_written_out(layer, composite, masked):
    x = torch.randn(2, 5, 8, dtype=D)
    mask = torch.triu(torch.ones(5, 5, dtype=torch.bool), 1) if masked else None
    fused, written = Head(layer, mask), Head(WrittenOut(layer, 2), mask)
    written.out = fused.out
    torch.testing.assert_close(fused(x), written(x))
    seed = torch.eye(3, dtype=D)[[0, 2]]
    results = []
    for model in (fused, written):
        instance = composite(epsilon=1e-9)
        with Gradient(model, instance) as attributor:
            output, relevance = attributor(x, seed)
            names = [c["name"] for c in instance.captured]
        results.append(relevance)
    assert "body.self_attn:multi_head_attention#0" in names or "body:softmax#0" in names
    torch.testing.assert_close(results[0], results[1])


def test_pieces_of_the_fused_attention_are_named(layer):
    composite = AttnLRP()
    with Gradient(Head(layer), composite) as attributor:
        attributor(torch.randn(1, 4, 8, dtype=D), torch.ones(1, 3, dtype=D))
        names = [c["name"] for c in composite.captured]
    assert names[:7] == [
        "body.self_attn:multi_head_attention#0",
        "body.self_attn:linear#0",
        "body.self_attn:linear#1",
        "body.self_attn:linear#2",
        "body.self_attn:matmul#0",
        "body.self_attn:softmax#0",
        "body.self_attn:matmul#1",
    ]


def test_transformer_encoder_conserves_under_cplrp_without_biases():
    torch.manual_seed(2)
    encoder_layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
    model = Head(nn.TransformerEncoder(encoder_layer, 2, enable_nested_tensor=False).to(D).eval())
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("bias"):
                parameter.zero_()
    x = torch.randn(2, 5, 8, dtype=D)
    with Gradient(model, CPLRP(epsilon=0.0)) as attributor:
        output, relevance = attributor(x, lambda out: out * torch.eye(3, dtype=D)[[1, 2]])
    torch.testing.assert_close(relevance.sum((1, 2)), output[[0, 1], [1, 2]])
