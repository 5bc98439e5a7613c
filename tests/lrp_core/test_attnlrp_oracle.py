"""AttnLRP and CP-LRP against LXT 2.1's efficient mode on tiny random transformers (float64).

LXT patches the modeling modules process-wide, so it runs in a subprocess
(``lxt_oracle.py``), once per variant for all families; the same models are rebuilt here from
the same configs and seeds (``transformer_models.py``), unpatched, and explained by
``lrp_core``. Both use ε = 0 on linear layers (LXT's efficient mode applies no epsilon), and
LXT's identity rule adds 1e-10 to its denominators, hence the tolerance of 1e-5 relative.
LXT has no CP-LRP map for BERT; for Hugging Face's ViT it has no map at all, so the oracle
assembles one from LXT's own patches (attention, LayerNorm, GELU), as its torchvision ViT map does.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from tests.oracles import require_module

require_module("transformers", 'pip install "transformers>=4.57,<5"; see scripts/test.sh')
require_module("lxt", "pip install --no-deps lxt==2.1, the oracle; see scripts/test.sh")

from lrp_core.attribution import Gradient  # noqa: E402
from lrp_core.op_composites import CPLRP, AttnLRP  # noqa: E402

from .transformer_models import build, logits_of  # noqa: E402

HERE = Path(__file__).parent
CASES = [
    ("llama", "attnLRP"),
    ("gpt2", "attnLRP"),
    ("bert", "attnLRP"),
    ("vit", "attnLRP"),
    ("llama", "cp_LRP"),
    ("gpt2", "cp_LRP"),
    ("vit", "cp_LRP"),
]


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    out = tmp_path_factory.mktemp("lxt")
    for variant in ("attnLRP", "cp_LRP"):
        families = [family for family, v in CASES if v == variant]
        subprocess.run(
            [sys.executable, str(HERE / "lxt_oracle.py"), variant, str(out), *families],
            check=True,
            capture_output=True,
            timeout=600,
        )
    return out


class Logits(nn.Module):
    def __init__(self, model, family):
        super().__init__()
        self.model, self.family = model, family

    def forward(self, inputs):
        return logits_of(self.model, self.family, inputs)


@pytest.mark.parametrize(("family", "variant"), CASES)
def test_agrees_with_lxt(oracle, family, variant):
    expected = torch.load(oracle / f"{family}-{variant}.pt")
    model, inputs, _ = build(family)
    composite = (AttnLRP if variant == "attnLRP" else CPLRP)(epsilon=0.0)
    target = expected["target"]
    with Gradient(Logits(model, family), composite) as attributor:
        output, relevance = attributor(inputs, lambda out: out * torch.eye(out.shape[1])[[target]])
    assert output[0].argmax() == target
    reference = expected["relevance"]
    error = (relevance - reference).abs().max() / reference.abs().max()
    assert error < 1e-5, f"{family} {variant}: max relative difference {error:.2e}"
