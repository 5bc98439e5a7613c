"""Tests of the text demo: generated snippets with evidence masks, tokenizer, shipped text model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from lrp_widgets import demo
from lrp_widgets.demo import (
    TEXT_CLASSES,
    TOKENIZER,
    build_text_model,
    load_text_model,
    make_text_batch,
)
from lrp_widgets.demo.text import (
    EVIDENCE_IDS,
    EVIDENCE_WORDS,
    MAX_EVIDENCE,
    NEUTRAL_IDS,
    NEUTRAL_LABEL,
    NEUTRAL_WORDS,
    UNKNOWN_TOKEN,
    VOCABULARY,
    WordTokenizer,
    generate_text,
    label_from_evidence,
)
from lrp_widgets.demo.train_transformers import (
    TRAIN_SEED_BASE,
    VALIDATION_SEED,
    text_accuracy,
    train_text,
)

# A seed the training script never draws: it uses TRAIN_SEED_BASE + step and VALIDATION_SEED.
TEST_SEED = 7


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return make_text_batch(600, seed=TEST_SEED)


@pytest.fixture(scope="module")
def model() -> nn.Module:
    return load_text_model()


def _redraw_distractors(ids: torch.Tensor, evidence: torch.Tensor, seed: int) -> torch.Tensor:
    """``ids`` with every non-evidence token replaced by a freshly drawn neutral word."""
    rng = np.random.default_rng(seed)
    fresh = torch.from_numpy(NEUTRAL_IDS[rng.integers(0, len(NEUTRAL_IDS), size=ids.shape)])
    return torch.where(evidence, ids, fresh)


# -- generator ----------------------------------------------------------------------------------


def test_same_seed_gives_identical_batches_and_other_seeds_differ():
    first, second = make_text_batch(50, seed=5), make_text_batch(50, seed=5)
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(first[0], make_text_batch(50, seed=6)[0])


def test_generation_leaves_global_random_state_alone():
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()
    make_text_batch(4, seed=1)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert all(
        np.array_equal(a, b) for a, b in zip(np.random.get_state(), numpy_state, strict=True)
    )


def test_shapes_dtypes_and_balanced_classes(batch):
    ids, labels, evidence = batch
    assert ids.shape == (600, 16) and ids.dtype == torch.int64
    assert labels.shape == (600,) and labels.dtype == torch.int64
    assert evidence.shape == (600, 16) and evidence.dtype == torch.bool
    assert ids.min() >= 0 and ids.max() < len(VOCABULARY)
    counts = torch.bincount(labels, minlength=len(TEXT_CLASSES))
    assert counts.tolist() == [200, 200, 200]
    assert make_text_batch(3, seed=1, length=24)[0].shape == (3, 24)
    # make_text_batch is the generator's numpy output as tensors.
    for tensor, array in zip(batch, generate_text(600, TEST_SEED), strict=True):
        assert np.array_equal(tensor.numpy(), array)


def test_evidence_tokens_are_exactly_the_sentiment_words_of_the_label(batch):
    ids, labels, evidence = batch
    words = np.array(VOCABULARY)[ids.numpy()]
    for row_words, label, row_evidence in zip(
        words, labels.tolist(), evidence.numpy(), strict=True
    ):
        count = row_evidence.sum()
        if label == NEUTRAL_LABEL:
            assert count == 0
        else:
            assert 1 <= count <= MAX_EVIDENCE
            assert set(row_words[row_evidence]) <= set(EVIDENCE_WORDS[TEXT_CLASSES[label]])
        assert set(row_words[~row_evidence]) <= set(NEUTRAL_WORDS)


def test_label_is_a_function_of_the_evidence_tokens_only(batch):
    ids, labels, evidence = batch
    assert np.array_equal(label_from_evidence(ids.numpy()), labels.numpy())
    # New distractors (other neutral words at the same places) leave the label unchanged.
    redrawn = _redraw_distractors(ids, evidence, seed=11)
    assert (redrawn[~evidence] != ids[~evidence]).float().mean() > 0.9
    assert np.array_equal(label_from_evidence(redrawn.numpy()), labels.numpy())
    # Both sentiments in one sequence contradict each other: no label.
    negative, positive = TEXT_CLASSES.index("negative"), TEXT_CLASSES.index("positive")
    mixed = np.array([[EVIDENCE_IDS[negative][0], EVIDENCE_IDS[positive][0], NEUTRAL_IDS[0]]])
    assert label_from_evidence(mixed).tolist() == [-1]


@pytest.mark.parametrize(
    ("n", "seed", "length", "error"),
    [(-1, 0, 16, ValueError), (3, -2, 16, ValueError), (3, 0, 2, ValueError),
     (2.5, 0, 16, TypeError), (True, 0, 16, TypeError), (3, 0, "16", TypeError)],
)  # fmt: skip
def test_bad_arguments_raise_clear_errors(n, seed, length, error):
    with pytest.raises(error, match="n|seed|length"):
        make_text_batch(n, seed, length)


# -- tokenizer ----------------------------------------------------------------------------------


def test_tokenizer_round_trips_generated_sequences(batch):
    ids = batch[0][:20]
    for row in ids.tolist():
        assert TOKENIZER.encode(TOKENIZER.decode(row)) == row
    assert len(TOKENIZER) == len(VOCABULARY) == len(set(VOCABULARY))


def test_tokenizer_lowercases_and_maps_unknown_words():
    assert TOKENIZER.tokenize("The  FILM was\tgreat zebra") == [
        "the", "film", "was", "great", UNKNOWN_TOKEN,
    ]  # fmt: skip
    assert TOKENIZER.encode("zebra") == [TOKENIZER.unknown_id]
    with pytest.raises(ValueError, match="token id"):
        TOKENIZER.decode([len(VOCABULARY)])
    with pytest.raises(TypeError, match="text"):
        TOKENIZER.encode(3)
    with pytest.raises(ValueError, match="unique"):
        WordTokenizer([UNKNOWN_TOKEN, "a", "a"])


# -- model and weights --------------------------------------------------------------------------


def test_weights_file_is_small():
    weights = Path(demo.__file__).with_name(demo.TEXT_WEIGHTS_FILE)
    assert weights.stat().st_size < 2 * 1024 * 1024


def test_load_text_model_is_trained_float32_cpu_and_in_eval_mode(model):
    assert not any(module.training for module in model.modules())
    for tensor in model.state_dict().values():
        assert tensor.device.type == "cpu" and tensor.dtype == torch.float32
    fresh = build_text_model()
    assert not torch.equal(model.head.weight, fresh.head.weight)


def test_missing_weights_say_how_to_recreate_them(monkeypatch):
    monkeypatch.setattr(demo, "TEXT_WEIGHTS_FILE", "no-such-weights.pt")
    with pytest.raises(FileNotFoundError, match="lrp_widgets.demo.train_transformers"):
        load_text_model()


@pytest.mark.parametrize("length", [8, 16, 24])
def test_test_set_accuracy_is_at_least_95_percent(model, length):
    assert TEST_SEED != VALIDATION_SEED and TEST_SEED < TRAIN_SEED_BASE
    assert text_accuracy(model, 600, TEST_SEED, length) >= 0.95


@torch.no_grad()
def test_the_model_decides_by_the_evidence_tokens(model, batch):
    ids, labels, evidence = batch
    sentiment = labels != NEUTRAL_LABEL
    # Other distractors: the same predictions.
    redrawn = _redraw_distractors(ids, evidence, seed=12)
    assert (model(redrawn).argmax(1) == labels).float().mean() >= 0.95
    # Evidence words replaced by neutral ones: neutral.
    removed = torch.where(evidence, torch.from_numpy(NEUTRAL_IDS)[0], ids)
    assert (model(removed[sentiment]).argmax(1) == NEUTRAL_LABEL).float().mean() >= 0.95
    # Every evidence word swapped for the word at the same place in the other sentiment's list.
    negative, positive = TEXT_CLASSES.index("negative"), TEXT_CLASSES.index("positive")
    swap = torch.arange(len(VOCABULARY))
    swap[EVIDENCE_IDS[negative]] = torch.from_numpy(EVIDENCE_IDS[positive])
    swap[EVIDENCE_IDS[positive]] = torch.from_numpy(EVIDENCE_IDS[negative])
    flipped = model(swap[ids[sentiment]]).argmax(1)
    opposite = negative + positive - labels[sentiment]
    assert (flipped == opposite).float().mean() >= 0.95


def test_ids_and_embeddings_give_the_same_logits(model, batch):
    ids = batch[0][:8]
    with torch.no_grad():
        logits = model(ids)
        embeddings = model.embed(ids)
        assert logits.shape == (8, len(TEXT_CLASSES))
        assert embeddings.shape == (8, 16, model.token_embedding.embedding_dim)
        assert torch.equal(model(embeddings), logits)
        assert torch.equal(model.forward_embeddings(embeddings), logits)


@pytest.mark.parametrize(
    ("inputs", "match"),
    [(torch.zeros(2, 3, 4, dtype=torch.int64), "ids"),
     (torch.full((2, 5), len(VOCABULARY)), "ids"),
     (torch.zeros(2, 5, 7), "embeddings"),
     (torch.zeros(2, 40, 32), "tokens")],
)  # fmt: skip
def test_bad_inputs_raise_clear_errors(model, inputs, match):
    with pytest.raises(ValueError, match=match):
        model(inputs)


def test_gradient_times_input_on_embeddings_runs_through_the_attributor(model, batch):
    # Gradient x input, R_t = sum_d e_td * d f_y / d e_td, against a float64 autograd reference.
    from lrp_core.attribution import Gradient

    ids, labels, evidence = (tensor[:64] for tensor in batch)
    embeddings = model.embed(ids).detach()
    target = nn.functional.one_hot(labels, len(TEXT_CLASSES)).float()
    with Gradient(model) as attributor:
        output, gradient = attributor(embeddings, target)
    assert output.shape == (64, len(TEXT_CLASSES)) and gradient.shape == embeddings.shape
    relevance = (gradient * embeddings).sum(-1)

    reference_model = load_text_model().double()
    reference_input = embeddings.double().requires_grad_(True)
    logits = reference_model(reference_input)
    (reference_gradient,) = torch.autograd.grad(
        logits.gather(1, labels[:, None]).sum(), reference_input
    )
    reference = (reference_gradient * reference_input).sum(-1).detach()
    torch.testing.assert_close(relevance.double(), reference, rtol=1e-4, atol=1e-5)
    # The largest |relevance| falls on an evidence token far more often than by chance (~1/8):
    # 78 % of sentiment sequences of seed 7 with the shipped weights.
    sentiment = labels != NEUTRAL_LABEL
    top = relevance.abs().argmax(1)
    assert evidence[torch.arange(64), top][sentiment].float().mean() >= 0.5


def test_training_is_reproducible():
    threads, rng_state = torch.get_num_threads(), torch.get_rng_state()
    try:
        first, second = train_text(steps=2, log_every=10), train_text(steps=2, log_every=10)
    finally:
        torch.set_num_threads(threads)
        torch.set_rng_state(rng_state)
    for key, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[key]), key
