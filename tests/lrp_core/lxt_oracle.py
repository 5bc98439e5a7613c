"""Oracle script: LXT 2.1's efficient mode (relevance = input × gradient after its
``monkey_patch``) on one tiny model of ``transformer_models``. Run in a subprocess, since LXT
patches the modeling modules process-wide:

    python lxt_oracle.py VARIANT OUT_DIR FAMILY...    (VARIANT: attnLRP or cp_LRP)

Writes ``OUT_DIR/FAMILY-VARIANT.pt`` holding ``{"relevance", "target", "logit"}`` per family.
LXT imports ``torchvision.models.vision_transformer`` (and Zennit, if installed, more of
torchvision), so a stand-in torchvision is placed into ``sys.modules`` first; torchvision is not
installed here.
"""

from __future__ import annotations

import importlib.machinery
import sys
import types
from pathlib import Path

import torch
from torch import nn


def _stand_in_torchvision() -> None:
    names = {
        "torchvision": {},
        "torchvision.ops": {"FrozenBatchNorm2d": type("FrozenBatchNorm2d", (nn.Module,), {})},
        "torchvision.models": {},
        "torchvision.models.resnet": {
            "BasicBlock": type("BasicBlock", (nn.Module,), {}),
            "Bottleneck": type("Bottleneck", (nn.Module,), {}),
        },
        "torchvision.models.vision_transformer": {
            name: type(name, (nn.Module,), {})
            for name in ("EncoderBlock", "MLPBlock", "Encoder", "VisionTransformer")
        },
    }
    for name, attributes in names.items():
        module = types.ModuleType(name)
        module.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
        module.__path__ = []
        module.nn = nn
        for key, value in attributes.items():
            setattr(module, key, value)
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, module)


def _patch(family: str, variant: str) -> None:
    from functools import partial

    from lxt.efficient import monkey_patch

    if family == "vit":  # LXT has no map for Hugging Face's ViT: its own parts, as for its ViT
        from lxt.efficient.patches import (
            layer_norm_forward,
            non_linear_forward,
            patch_attention,
            patch_cp_attention,
            patch_method,
        )
        from transformers.activations import GELUActivation
        from transformers.models.vit import modeling_vit

        attention = patch_attention if variant == "attnLRP" else patch_cp_attention
        patch_map = {
            GELUActivation: partial(patch_method, non_linear_forward, keep_original=True),
            modeling_vit.nn.LayerNorm: partial(patch_method, layer_norm_forward),
            modeling_vit: attention,
        }
        monkey_patch(modeling_vit, patch_map)
        return
    import importlib

    lxt_models = importlib.import_module(f"lxt.efficient.models.{family}")
    modeling = importlib.import_module(f"transformers.models.{family}.modeling_{family}")
    monkey_patch(modeling, getattr(lxt_models, variant))


def explain(family: str, variant: str) -> dict:
    """LXT's relevance for the predicted class (position -1 for language models)."""
    from transformer_models import build, logits_of

    _patch(family, variant)
    model, inputs, _ = build(family)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    inputs = inputs.clone().requires_grad_()
    logits = logits_of(model, family, inputs)
    target = int(logits[0].argmax())
    logits[0, target].backward()
    relevance = (inputs * inputs.grad).detach()
    return {"relevance": relevance, "target": target, "logit": float(logits[0, target].detach())}


def main(variant: str, out_dir: str, *families: str) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    _stand_in_torchvision()
    for family in families:  # ViT last: its patch of GELUActivation is process-wide
        torch.save(explain(family, variant), Path(out_dir) / f"{family}-{variant}.pt")


if __name__ == "__main__":
    main(*sys.argv[1:])
