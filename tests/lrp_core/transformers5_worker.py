"""Worker for ``test_transformers5.py``, run by the interpreter of a second environment that has
transformers 5 (``.venv-tf5``, made by ``scripts/test.sh``):

    python transformers5_worker.py IN_FILE OUT_FILE

``IN_FILE`` holds, per family, the state dict and inputs of the tiny model built under the main
environment (transformers 4.57); the same family is built here from its config, given those
weights and explained by ``lrp_core``'s ``AttnLRP`` and ``CPLRP`` (this repository's code,
unchanged).
``OUT_FILE`` gets the transformers version and, per family, the logits and both relevance maps.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parents[2]))

from tests.lrp_core.explain_families import explain  # noqa: E402
from tests.lrp_core.transformer_models import build  # noqa: E402

#: transformers 5 renamed the modules of ViT (same computation, same parameters)
VIT_NAMES = (
    ("vit.encoder.layer.", "vit.layers."),
    (".attention.attention.query.", ".attention.q_proj."),
    (".attention.attention.key.", ".attention.k_proj."),
    (".attention.attention.value.", ".attention.v_proj."),
    (".attention.output.dense.", ".attention.o_proj."),
    (".intermediate.dense.", ".mlp.fc1."),
    (".output.dense.", ".mlp.fc2."),
)


def renamed(state: dict, model: torch.nn.Module) -> dict:
    """``state`` with 4.x parameter names changed to the model's where they differ."""
    if set(state) <= set(model.state_dict()):
        return state
    result = {}
    for name, value in state.items():
        for old, new in VIT_NAMES:
            name = name.replace(old, new)
        result[name] = value
    return result


def main(in_file: str, out_file: str) -> None:
    import transformers

    given = torch.load(in_file)
    results = {"version": transformers.__version__}
    for family, entry in given.items():
        model, _, _ = build(family)
        model.load_state_dict(renamed(entry["state"], model), strict=True)
        results[family] = explain(model, family, entry["inputs"])
    torch.save(results, out_file)


if __name__ == "__main__":
    main(*sys.argv[1:])
