"""Train the demo model and write the shipped weights.

Usage::

    .venv/bin/python -m lrp_widgets.demo.train [--steps N] [--output PATH]

Every step draws a fresh batch (seed ``TRAIN_SEED_BASE + step``), so the model never sees an
image twice and small seeds stay unseen for testing. Seeds, thread count and the order of all
operations are fixed, so a rerun on the same machine and torch version reproduces the weights
exactly (other CPUs may differ in the last bits of floating-point sums).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch import nn

from . import CLASSES, WEIGHTS_FILE, build_model, make_batch

TRAIN_SEED_BASE = 1_000_000
VALIDATION_SEED = 999_999
VALIDATION_SIZE = 1000
STEPS = 800
BATCH_SIZE = 64
MAX_LR = 4e-3
WEIGHT_DECAY = 1e-4
NUM_THREADS = 2
INIT_SEED = 0


@torch.no_grad()
def accuracy(model: nn.Module, n: int, seed: int, batch_size: int = 250) -> float:
    """Fraction of ``n`` fresh images drawn from ``seed`` that ``model`` classifies correctly."""
    images, labels, _ = make_batch(n, seed)
    correct = 0
    for start in range(0, n, batch_size):
        logits = model(images[start : start + batch_size])
        correct += int((logits.argmax(dim=1) == labels[start : start + batch_size]).sum())
    return correct / max(n, 1)


def train(steps: int = STEPS, log_every: int = 100) -> nn.Module:
    """Train a fresh demo model for ``steps`` steps; returns it in eval mode."""
    torch.set_num_threads(NUM_THREADS)
    torch.manual_seed(INIT_SEED)
    model = build_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=MAX_LR, weight_decay=WEIGHT_DECAY)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=MAX_LR, total_steps=steps)
    loss_fn = nn.CrossEntropyLoss()

    model.train()
    running_loss = 0.0
    for step in range(steps):
        images, labels, _ = make_batch(BATCH_SIZE, TRAIN_SEED_BASE + step)
        loss = loss_fn(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        running_loss += loss.item()
        if (step + 1) % log_every == 0:
            print(f"step {step + 1:5d}/{steps}  loss {running_loss / log_every:.4f}", flush=True)
            running_loss = 0.0
    return model.eval()


def main(argv: list[str] | None = None) -> None:
    """Command line entry: train, report validation accuracy, save the state_dict."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--steps", type=int, default=STEPS, help="optimiser steps (default %(default)s)"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path(__file__).with_name(WEIGHTS_FILE),
        help="where to write the state_dict (default: the package's shipped weights)",
    )
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be at least 1, got {args.steps}")

    start = time.perf_counter()
    model = train(args.steps)
    elapsed = time.perf_counter() - start
    val = accuracy(model, VALIDATION_SIZE, VALIDATION_SEED)
    print(f"trained {args.steps} steps in {elapsed:.1f} s on {NUM_THREADS} threads")
    print(
        f"validation accuracy on {VALIDATION_SIZE} new images: {val:.4f} ({len(CLASSES)} classes)"
    )

    tmp = args.output.with_suffix(args.output.suffix + ".tmp")
    torch.save(model.state_dict(), tmp)
    tmp.replace(args.output)
    print(f"wrote {args.output} ({args.output.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
