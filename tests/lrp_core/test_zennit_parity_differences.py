"""The deliberate differences from Zennit 1.0 listed in the README that no other parity test shows.

Each test runs the same code against lrp_core and the reference library (a black-box oracle) and
asserts both sides of the difference, so that it stays documented only while it is real.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import lrp_core
import lrp_core.attribution
import lrp_core.composites
import lrp_core.core
import lrp_core.rules
import lrp_core.torchvision

from .zennit_oracle import load

zennit = load()


def test_two_rules_on_one_module():
    """README 1: Zennit stacks two hooks on one module; lrp_core refuses the second one."""
    layer = nn.Linear(2, 2)
    handles = [zennit.rules.Epsilon().register(layer), zennit.rules.ZPlus().register(layer)]
    for handle in handles:
        handle.remove()
    first = lrp_core.rules.Epsilon().register(layer)
    try:
        with pytest.raises(lrp_core.core.HookConflictError, match="already has a Epsilon hook"):
            lrp_core.rules.ZPlus().register(layer)
    finally:
        first.remove()
    assert not layer._forward_hooks and not layer._forward_pre_hooks


class _Product(nn.Module):
    def forward(self, x, *, y):
        return x * y


def _grad_input_count(lib) -> int:
    counts = []

    class Counting(lib.core.Hook):
        def backward(self, module, grad_input, grad_output):
            counts.append(len(grad_input))

    module = _Product()
    handles = Counting().register(module)
    try:
        x, y = torch.ones(2, requires_grad=True), torch.ones(2, requires_grad=True)
        module(x, y=y).sum().backward()
    finally:
        handles.remove()
    return counts[0]


def test_keyword_tensor_inputs_get_gradients():
    """README 4: a tensor passed by keyword gets a grad_input entry in lrp_core only."""
    assert _grad_input_count(lrp_core) == 2
    assert _grad_input_count(zennit) == 1


def test_rules_keep_only_what_their_backward_needs():
    """README 5: Zennit's Epsilon keeps the input, the keywords and grad_output of every call."""
    kept = []
    for lib in (lrp_core, zennit):
        rule, layer = lib.rules.Epsilon(), nn.Linear(2, 2)
        handles = rule.register(layer)
        x = torch.ones(1, 2, requires_grad=True)
        layer(x).sum().backward()
        kept.append(set(rule.stored_tensors))
        handles.remove()
    assert kept == [set(), {"input", "kwargs", "grad_output"}]


def test_unmatched_modules_are_reported():
    """README 8: an LRP preset warns about a computing module without a rule; Zennit is silent."""
    model = nn.Sequential(nn.Linear(3, 3), nn.LayerNorm(3), nn.Linear(3, 2))
    x = torch.randn(1, 3)
    with pytest.warns(lrp_core.composites.PlainGradientFallbackWarning, match="LayerNorm"):
        lrp_core.attribution.Gradient(model, lrp_core.composites.EpsilonPlus())(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        zennit.attribution.Gradient(model, zennit.composites.EpsilonPlus())(x)


def test_vgg_canonizer_only_canonizes_vgg_parts():
    """README 11: Zennit's VGGCanonizer merges a batch norm in any sequential container; lrp_core's
    looks for torchvision's VGG (or the class given) and says so when it cannot."""
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)).eval()
    instances = zennit.torchvision.VGGCanonizer().apply(model)
    assert len(instances) == 1
    for instance in instances:
        instance.remove()
    with pytest.raises(lrp_core.torchvision.TorchvisionNotAvailableError, match="vgg_type"):
        lrp_core.torchvision.VGGCanonizer().apply(model)
    assert lrp_core.torchvision.VGGCanonizer(vgg_type=nn.Sequential).apply(model)


def test_hook_refs_is_a_list():
    """README 7: the same hooks, as a list in registration order instead of a WeakSet."""
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2))
    refs = []
    for lib in (lrp_core, zennit):
        composite = lib.composites.EpsilonPlus()
        with composite.context(model):
            refs.append(composite.hook_refs)
            names = [type(hook).__name__ for hook in composite.hook_refs]
            assert sorted(names) == ["Epsilon", "Epsilon", "Pass"]
    assert type(refs[0]) is list and type(refs[1]).__name__ == "WeakSet"
    assert [type(hook).__name__ for hook in refs[0]] == ["Epsilon", "Pass", "Epsilon"]


def test_bad_arguments_fail_at_construction():
    """README 16: Zennit builds these and fails later (or computes with them)."""
    zennit.rules.ClampMod()
    zennit.rules.Epsilon(epsilon=-1.0)
    with pytest.raises(ValueError, match="min or max"):
        lrp_core.rules.ClampMod()
    with pytest.raises(ValueError, match="epsilon"):
        lrp_core.rules.Epsilon(epsilon=-1.0)
