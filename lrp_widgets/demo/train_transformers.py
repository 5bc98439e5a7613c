"""Train the two demo transformers and write their shipped weights.

Usage::

    .venv/bin/python -m lrp_widgets.demo.train_transformers [--model {vit,text,both}]
        [--vit-steps N] [--text-steps N] [--output-dir DIR]

Every step draws a fresh batch (seed ``TRAIN_SEED_BASE + step``), so a model never sees an
example twice and small seeds stay unseen for testing. Seeds, the thread count (one thread, so
the result does not depend on how many cores are free) and the order of all operations are fixed,
so a rerun on the same machine and torch version reproduces the weights exactly.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import (
    TEXT_WEIGHTS_FILE,
    VIT_WEIGHTS_FILE,
    build_text_model,
    build_vit_model,
    make_batch,
    make_text_batch,
)

TRAIN_SEED_BASE = 2_000_000
VALIDATION_SEED = 999_999
VALIDATION_SIZE = 1000
NUM_THREADS = 1
INIT_SEED = 0
BATCH_SIZE = 64
GRAD_CLIP = 1.0
VIT_STEPS = 3000
VIT_LR = 3e-3
VIT_WEIGHT_DECAY = 0.05
TEXT_STEPS = 300
TEXT_LR = 3e-3
TEXT_WEIGHT_DECAY = 0.01
# The text model trains on sequence lengths drawn from this range (one length per batch).
TEXT_LENGTHS = (8, 24)

Batch = tuple[torch.Tensor, torch.Tensor]


@torch.no_grad()
def accuracy(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of ``inputs`` that ``model`` classifies as ``labels`` (in batches of 250)."""
    correct = 0
    for start in range(0, len(labels), 250):
        logits = model(inputs[start : start + 250])
        correct += int((logits.argmax(dim=1) == labels[start : start + 250]).sum())
    return correct / max(len(labels), 1)


def vit_accuracy(model: nn.Module, n: int, seed: int) -> float:
    """Accuracy of the vision transformer on ``n`` fresh shape images drawn from ``seed``."""
    images, labels, _ = make_batch(n, seed)
    return accuracy(model, images, labels)


def text_accuracy(model: nn.Module, n: int, seed: int, length: int = 16) -> float:
    """Accuracy of the text transformer on ``n`` fresh sequences drawn from ``seed``."""
    ids, labels, _ = make_text_batch(n, seed, length)
    return accuracy(model, ids, labels)


def _vit_batch(step: int) -> Batch:
    images, labels, _ = make_batch(BATCH_SIZE, TRAIN_SEED_BASE + step)
    return images, labels


def _text_lengths(steps: int) -> np.ndarray:
    low, high = TEXT_LENGTHS
    return np.random.default_rng(INIT_SEED).integers(low, high + 1, size=steps)


def _fit(
    model: nn.Module,
    batch: Callable[[int], Batch],
    steps: int,
    lr: float,
    weight_decay: float,
    log_every: int,
) -> nn.Module:
    """Train with AdamW, a one-cycle learning rate and gradient clipping; returns eval mode."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=steps, pct_start=0.1
    )
    model.train()
    running_loss = 0.0
    for step in range(steps):
        inputs, labels = batch(step)
        loss = nn.functional.cross_entropy(model(inputs), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        optimizer.step()
        schedule.step()
        running_loss += loss.item()
        if (step + 1) % log_every == 0:
            print(f"step {step + 1:5d}/{steps}  loss {running_loss / log_every:.4f}", flush=True)
            running_loss = 0.0
    return model.eval()


def train_vit(steps: int = VIT_STEPS, log_every: int = 100) -> nn.Module:
    """Train a fresh demo vision transformer for ``steps`` steps; returns it in eval mode."""
    torch.set_num_threads(NUM_THREADS)
    torch.manual_seed(INIT_SEED)
    model = build_vit_model()
    return _fit(model, _vit_batch, steps, VIT_LR, VIT_WEIGHT_DECAY, log_every)


def train_text(steps: int = TEXT_STEPS, log_every: int = 50) -> nn.Module:
    """Train a fresh demo text transformer for ``steps`` steps; returns it in eval mode."""
    torch.set_num_threads(NUM_THREADS)
    torch.manual_seed(INIT_SEED)
    model = build_text_model()
    lengths = _text_lengths(steps)

    def batch(step: int) -> Batch:
        ids, labels, _ = make_text_batch(BATCH_SIZE, TRAIN_SEED_BASE + step, int(lengths[step]))
        return ids, labels

    return _fit(model, batch, steps, TEXT_LR, TEXT_WEIGHT_DECAY, log_every)


def _save(model: nn.Module, output: Path) -> None:
    tmp = output.with_suffix(output.suffix + ".tmp")
    torch.save(model.state_dict(), tmp)
    tmp.replace(output)
    print(f"wrote {output} ({output.stat().st_size / 1024:.0f} KiB)")


def main(argv: list[str] | None = None) -> None:
    """Command line entry: train, report validation accuracy, save the state_dicts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("vit", "text", "both"), default="both")
    parser.add_argument("--vit-steps", type=int, default=VIT_STEPS)
    parser.add_argument("--text-steps", type=int, default=TEXT_STEPS)
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path(__file__).parent,
        help="where to write the weights (default: the package, i.e. the shipped weights)",
    )
    args = parser.parse_args(argv)
    for name in ("vit_steps", "text_steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")

    if args.model in ("vit", "both"):
        start = time.perf_counter()
        vit = train_vit(args.vit_steps)
        print(f"vit: trained {args.vit_steps} steps in {time.perf_counter() - start:.1f} s")
        val = vit_accuracy(vit, VALIDATION_SIZE, VALIDATION_SEED)
        print(f"vit: validation accuracy on {VALIDATION_SIZE} new images: {val:.4f}")
        _save(vit, args.output_dir / VIT_WEIGHTS_FILE)
    if args.model in ("text", "both"):
        start = time.perf_counter()
        text = train_text(args.text_steps)
        print(f"text: trained {args.text_steps} steps in {time.perf_counter() - start:.1f} s")
        val = text_accuracy(text, VALIDATION_SIZE, VALIDATION_SEED)
        print(f"text: validation accuracy on {VALIDATION_SIZE} new sequences: {val:.4f}")
        _save(text, args.output_dir / TEXT_WEIGHTS_FILE)


if __name__ == "__main__":
    main()
