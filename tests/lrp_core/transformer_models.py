"""Tiny random-weight transformers built from configs (no hub download), shared by the oracle
script ``lxt_oracle.py`` (run in a subprocess) and the tests.

``build(family)`` returns ``(model, embeddings, position)``: a float64 model in eval mode with
eager attention, input embeddings ``(1, 16, 64)`` from fixed token ids, and the explained position
(None: the model returns ``(N, C)`` logits).
"""

from __future__ import annotations

import torch

FAMILIES = ("llama", "gpt2", "bert", "vit")
SEQUENCE = 16


def _config(family: str):
    import transformers as tf

    common = {"hidden_size": 64, "num_attention_heads": 4, "attn_implementation": "eager"}
    if family == "llama":
        return tf.LlamaConfig(
            vocab_size=50,
            intermediate_size=96,
            num_hidden_layers=2,
            num_key_value_heads=2,
            max_position_embeddings=64,
            **common,
        )
    if family == "gpt2":
        return tf.GPT2Config(
            vocab_size=50,
            n_embd=64,
            n_layer=2,
            n_head=4,
            n_positions=64,
            attn_implementation="eager",
        )
    if family == "bert":
        return tf.BertConfig(
            vocab_size=50,
            intermediate_size=96,
            num_hidden_layers=2,
            num_labels=3,
            max_position_embeddings=64,
            **common,
        )
    return tf.ViTConfig(
        image_size=16,
        patch_size=4,
        num_channels=3,
        intermediate_size=96,
        num_hidden_layers=2,
        num_labels=3,
        **common,
    )


def build(family: str, seed: int = 0):
    """``(model, embeddings, position)`` for ``family`` (see module docstring)."""
    import transformers as tf

    torch.manual_seed(seed)
    config = _config(family)
    model = {
        "llama": tf.LlamaForCausalLM,
        "gpt2": tf.GPT2LMHeadModel,
        "bert": tf.BertForSequenceClassification,
        "vit": tf.ViTForImageClassification,
    }[family](config)
    model = model.double().eval()
    generator = torch.Generator().manual_seed(seed + 1)
    if family == "vit":
        pixels = torch.randn(1, 3, 16, 16, generator=generator, dtype=torch.float64)
        return model, pixels, None
    ids = torch.randint(0, 50, (1, SEQUENCE), generator=generator)
    with torch.no_grad():
        embeddings = model.get_input_embeddings()(ids)
    return model, embeddings, (-1 if family in ("llama", "gpt2") else None)


def logits_of(model, family: str, inputs: torch.Tensor) -> torch.Tensor:
    """The explained logits ``(N, C)`` of ``model`` for embeddings (pixels for ViT)."""
    if family == "vit":
        return model(pixel_values=inputs).logits
    logits = model(inputs_embeds=inputs).logits
    return logits[:, -1] if logits.ndim == 3 else logits
