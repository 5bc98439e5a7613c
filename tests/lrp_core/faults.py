"""Fault injection for the hardening tests: a failure at the n-th step of a constructor, a
forward or a backward pass.

``steps(...)`` counts calls of chosen methods and of every module's forward; ``FaultyEpsilon``
counts relevance calls in the backward pass. Both raise the chosen exception at call ``n`` (0:
never), so a test can walk ``n`` over every step of an operation and check that nothing is left
behind whichever step failed.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from lrp_core.rules import Epsilon


class Fault(Exception):
    """The injected failure."""


class Plan:
    """When to fail: at call ``n`` (counted in ``calls``) with ``exception``."""

    def __init__(self, n: int = 0, exception: type[BaseException] = Fault):
        self.n, self.exception, self.calls = n, exception, 0

    def step(self, where: str) -> None:
        self.calls += 1
        if self.calls == self.n:
            raise self.exception(f"injected at step {self.n} ({where})")


@contextmanager
def steps(plan: Plan, methods: list[tuple[type, str]], forward: bool = True) -> Iterator[Plan]:
    """Within the block, each call of the ``methods`` (``(class, name)``) and, with
    ``forward``, each module forward is one step of ``plan``."""
    originals = [(owner, name, owner.__dict__.get(name)) for owner, name in methods]

    def wrap(owner: type, name: str, original):
        @functools.wraps(original)
        def wrapper(*args, **kwargs):
            plan.step(f"{owner.__name__}.{name}")
            return original(*args, **kwargs)

        return wrapper

    for owner, name, _ in originals:
        setattr(owner, name, wrap(owner, name, getattr(owner, name)))
    handle = None
    if forward:
        hook = lambda module, args: plan.step(f"forward of {type(module).__name__}")  # noqa: E731
        handle = nn.modules.module.register_module_forward_pre_hook(hook)
    try:
        yield plan
    finally:
        if handle is not None:
            handle.remove()
        for owner, name, original in originals:
            if original is None:  # inherited: drop the wrapper, the base's method shows again
                delattr(owner, name)
            else:
                setattr(owner, name, original)


class FaultyEpsilon(Epsilon):
    """The Epsilon rule; each relevance call (of any copy) is a step of ``FaultyEpsilon.plan``."""

    plan = Plan()

    def _relevance(self, call, grad_outputs: tuple) -> tuple:
        FaultyEpsilon.plan.step(f"relevance of {type(call.module).__name__}")
        return super()._relevance(call, grad_outputs)


def bn_net(seed: int = 0) -> nn.Module:
    """Conv-BN-ReLU twice, pool, flatten, linear (3 classes), float64, non-trivial batch norms;
    input (N, 2, 6, 6)."""
    from .model_state import randomize_batch_norms

    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1),
        nn.BatchNorm2d(3),
        nn.ReLU(),
        nn.Conv2d(3, 3, 3, padding=1),
        nn.BatchNorm2d(3),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(12, 3),
    ).double()
    return randomize_batch_norms(model, seed)


def bn_batch(n: int = 2, seed: int = 1) -> torch.Tensor:
    return torch.randn(
        n, 2, 6, 6, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
    )
