"""The same code explains the same model families under transformers 5.

The main environment has transformers 4.57 (LXT, the oracle of ``test_attnlrp_oracle``, imports
only there). ``scripts/test.sh`` makes a second environment, ``.venv-tf5``, with torch and
transformers 5 and without this project installed; this test builds the tiny Llama, GPT-2, BERT
and ViT models here, hands their weights and inputs to that environment's interpreter
(``transformers5_worker.py``), which rebuilds them from their configs under transformers 5 and
explains them with this repository's ``lrp_core``. Logits and ``AttnLRP``/``CPLRP`` maps must
agree with the ones computed here in float64 (and those agree with LXT, see the oracle test).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import torch

from tests.oracles import require, require_module

require_module("transformers", 'pip install "transformers>=4.57,<5"; see scripts/test.sh')

from .explain_families import explain  # noqa: E402
from .transformer_models import FAMILIES, build  # noqa: E402

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
PYTHON = Path(os.environ.get("LRP_TF5_PYTHON", ROOT / ".venv-tf5" / "bin" / "python"))

require(PYTHON.exists(), f"no transformers 5 environment at {PYTHON} (scripts/test.sh makes it)")


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tf5")
    given, here = {}, {}
    for family in FAMILIES:
        model, inputs, _ = build(family)
        given[family] = {"state": model.state_dict(), "inputs": inputs}
        here[family] = explain(model, family, inputs)
    torch.save(given, folder / "in.pt")
    done = subprocess.run(
        [
            str(PYTHON),
            str(HERE / "transformers5_worker.py"),
            str(folder / "in.pt"),
            str(folder / "out.pt"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return here, torch.load(folder / "out.pt")


def test_the_second_environment_has_transformers_5(both):
    import transformers

    _, there = both
    assert int(there["version"].split(".")[0]) == 5
    assert int(transformers.__version__.split(".")[0]) == 4


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("variant", ["logits", "AttnLRP", "CPLRP"])
def test_same_results_under_transformers_5(both, family, variant):
    here, there = both
    expected, found = here[family][variant], there[family][variant]
    error = float((found - expected).abs().max() / expected.abs().max())
    assert error < 1e-10, f"{family} {variant}: max relative difference {error:.2e}"
