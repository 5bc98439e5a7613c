"""Hardening of the engine (issue 15): a failure at any step leaves the model as it was, a
composite is never silently ignored, canonizers refuse out-of-order removal, and numbers at the
edges get answers instead of overflows.

Fault injection (``faults``): an exception, or a ``KeyboardInterrupt``, at every step of an
attribution (canonizer merges, hook registrations, module forwards, per-module relevance calls
in the backward pass); after each, the model is checked bit for bit (``ModelState``) and the
same attributor then gives the reference result.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from lrp_core import types
from lrp_core.attribution import CompositeInUseError, Gradient
from lrp_core.canonizers import (
    AttributeCanonizer,
    CanonizerOrderError,
    MergeBatchNorm,
    SequentialMergeBatchNorm,
)
from lrp_core.composites import EpsilonPlusFlat, LayerMapComposite
from lrp_core.core import Hook
from lrp_core.evaluation import pointing_game
from lrp_core.image import imgify

from .faults import Fault, FaultyEpsilon, Plan, bn_batch, bn_net, steps
from .model_state import ModelState


def faulty_composite() -> LayerMapComposite:
    return LayerMapComposite(
        [(types.Linear, FaultyEpsilon(1e-6))], canonizers=[SequentialMergeBatchNorm()]
    )


def attribute(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    seed = torch.eye(3, dtype=x.dtype)[[0, 2]]
    return Gradient(model, faulty_composite())(x, seed)[1]


@pytest.mark.parametrize("exception", [Fault, KeyboardInterrupt])
def test_a_failure_at_any_step_of_an_attribution_leaves_the_model_as_it_was(exception):
    """Steps: 2 batch-norm merges, hook registrations, 9 module forwards, 3 relevance calls."""
    model, x = bn_net(), bn_batch()
    before = ModelState(model)
    with steps(Plan(), [(MergeBatchNorm, "register"), (Hook, "register")]) as counted:
        FaultyEpsilon.plan = counted
        expected = attribute(model, x)
    total = counted.calls
    assert total >= 2 + 9 + 3
    for n in range(1, total + 1):
        with steps(Plan(n, exception), [(MergeBatchNorm, "register"), (Hook, "register")]) as plan:
            FaultyEpsilon.plan = plan
            with pytest.raises(exception, match=f"injected at step {n}"):
                attribute(model, x)
        before.assert_same(model)
    FaultyEpsilon.plan = Plan()
    torch.testing.assert_close(attribute(model, x), expected, rtol=0, atol=0)


def test_a_composite_registered_on_another_model_is_refused():
    """Before: ``Gradient(model_b, comp)`` silently gave model B's plain gradient."""
    model_a, model_b, x = bn_net(0), bn_net(1), bn_batch()
    composite = EpsilonPlusFlat()
    state_b = ModelState(model_b)
    with composite.context(model_a):
        with pytest.raises(CompositeInUseError, match="registered on another model"):
            Gradient(model_b, composite)(x, torch.ones(2, 3, dtype=x.dtype))
        # on its own model the registration is still used as before
        Gradient(model_a, composite)(x, torch.ones(2, 3, dtype=x.dtype))
    state_b.assert_same(model_b)


def two_merges(model: nn.Module) -> tuple[MergeBatchNorm, MergeBatchNorm]:
    first, second = MergeBatchNorm(), MergeBatchNorm()
    first.register(model[0], model[1])
    second.register(model[0], model[1])  # merging the (now identity) batch norm again
    return first, second


def test_merged_batch_norms_removed_out_of_order_are_refused_and_nothing_changes():
    """Before: removing the first merge first put the first merge's weights back for good."""
    model = bn_net()
    before = ModelState(model)
    first, second = two_merges(model)
    merged = ModelState(model)
    with pytest.raises(CanonizerOrderError, match="reverse order"):
        first.remove()
    merged.assert_same(model)
    second.remove()
    first.remove()
    before.assert_same(model)


def test_attribute_canonizers_removed_out_of_order_are_refused_and_nothing_changes():
    model = bn_net()
    before = ModelState(model)
    first, second = AttributeCanonizer(), AttributeCanonizer()
    first.register(model[2], {"inplace": True, "extra": nn.Identity()})
    second.register(model[2], {"extra": nn.Identity()})
    with pytest.raises(CanonizerOrderError, match="attribute 'extra'"):
        first.remove()
    assert isinstance(model[2].extra, nn.Identity) and model[2].inplace is True
    second.remove()
    first.remove()
    assert not hasattr(model[2], "extra") and model[2].inplace is False
    before.assert_same(model)


def test_an_empty_batch_is_refused_before_the_model_runs():
    model, x = bn_net(), bn_batch()
    with pytest.raises(ValueError, match="input is an empty batch"):
        Gradient(model, EpsilonPlusFlat())(x[:0], torch.ones(0, 3, dtype=x.dtype))


@pytest.mark.parametrize("scale", [1e308, 3e38, 1.0])
def test_imgify_of_values_near_the_float_maximum_keeps_the_image(scale):
    """Before: values near ±1e308 gave an all-zero image (the width max - min overflowed)."""
    base = np.array([[-1.0, 0.0], [0.5, 1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warnings either
        image = np.asarray(imgify(base * scale))
    expected = np.asarray(imgify(base))
    assert np.abs(image.astype(int) - expected.astype(int)).max() <= 1
    assert image.max() == 255 and image.min() == 0


def brute_force_pointing(relevance: torch.Tensor, mask: torch.Tensor, tolerance: float):
    """A hit when some mask pixel q has |q - p| <= tolerance, p the first argmax (reference)."""
    hits = []
    for r, m in zip(relevance, mask, strict=True):
        p = divmod(int(r.flatten().argmax()), r.shape[1])
        pixels = m.nonzero().tolist()
        hits.append(any(math.dist(p, q) <= tolerance for q in pixels))
    return torch.tensor(hits)


@pytest.mark.parametrize("tolerance", [0, 1, 2.5, 7, 1e6, 1e300])
def test_pointing_game_tolerance_needs_no_memory_growing_with_it(tolerance):
    """Before: the mask was dilated by a disk of radius ``tolerance`` (memory ~ tolerance²; a
    tolerance of 1e6 asked for terabytes)."""
    generator = torch.Generator().manual_seed(0)
    relevance = torch.randn(6, 12, 10, generator=generator, dtype=torch.float64)
    mask = torch.zeros(6, 12, 10, dtype=torch.bool)
    for i in range(6):
        mask[i, 2 * i : 2 * i + 2, i : i + 3] = True
    hits = pointing_game(relevance, mask, tolerance=tolerance)
    assert torch.equal(hits, brute_force_pointing(relevance, mask, tolerance))


def test_a_handle_failing_to_remove_does_not_keep_the_others():
    """Undo runs to the end: every handle is removed, then the first error is raised."""
    from lrp_core.core import RemovableHandleList

    removed = []

    class Handle:
        def __init__(self, name: str, fails: bool = False):
            self.name, self.fails = name, fails

        def remove(self) -> None:
            removed.append(self.name)
            if self.fails:
                raise Fault(f"cannot remove {self.name}")

    handles = RemovableHandleList([Handle("a"), Handle("b", fails=True), Handle("c")])
    with pytest.raises(Fault, match="cannot remove b"):
        handles.remove()
    assert removed == ["a", "b", "c"] and not handles
