"""What the transformers-version check compares: logits and ``AttnLRP``/``CPLRP`` relevance of
one tiny model (see ``transformer_models``), for the predicted class."""

from __future__ import annotations

import torch
from torch import nn

from lrp_core.attribution import Gradient
from lrp_core.op_composites import CPLRP, AttnLRP

from .transformer_models import logits_of


class Logits(nn.Module):
    """The explained logits ``(N, C)`` of a family's model, from embeddings (pixels for ViT)."""

    def __init__(self, model: nn.Module, family: str):
        super().__init__()
        self.model, self.family = model, family

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return logits_of(self.model, self.family, inputs)


def explain(model: nn.Module, family: str, inputs: torch.Tensor) -> dict:
    """``{"logits", "AttnLRP", "CPLRP"}`` for ``model`` on ``inputs`` (ε = 0, predicted class)."""
    wrapped = Logits(model, family)
    with torch.no_grad():
        logits = wrapped(inputs)
    seed = torch.zeros_like(logits)
    seed[0, logits[0].argmax()] = 1.0
    result = {"logits": logits}
    for composite in (AttnLRP, CPLRP):
        with Gradient(wrapped, composite(epsilon=0.0)) as attributor:
            result[composite.__name__] = attributor(inputs, seed)[1]
    return result
