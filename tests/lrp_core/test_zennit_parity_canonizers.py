"""Parity of the canonizers with the reference library Zennit (black-box oracle).

MergeBatchNorm folds y = γ (z − μ) / sqrt(σ² + ε) + β into the preceding linear layer z = W x + b:
W' = W · γ / sqrt(σ² + ε) (per output channel), b' = (b − μ) · γ / sqrt(σ² + ε) + β. The merged
weights and biases must equal Zennit's to 1e-12, the state must come back bit-identical on removal,
and relevances through merged models must agree (see test_zennit_parity_composites.py).
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import lrp_core.canonizers
import lrp_core.composites
import lrp_core.rules

from .zennit_oracle import load

zennit = load()
TOL = dict(rtol=1e-12, atol=1e-12)


def make_model(kind: str, bias: bool = True, seed: int = 0) -> nn.Sequential:
    """Linear layer followed by a batch norm with non-trivial statistics, then ReLU and a head."""
    torch.manual_seed(seed)
    if kind == "conv":
        layers = [nn.Conv2d(3, 4, 3, bias=bias), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten()]
        layers.append(nn.Linear(4 * 4 * 4, 2))
    elif kind == "convT":
        layers = [nn.ConvTranspose1d(3, 4, 3, bias=bias), nn.BatchNorm1d(4), nn.ReLU()]
        layers += [nn.Flatten(), nn.Linear(4 * 8, 2)]
    else:
        layers = [nn.Linear(6, 5, bias=bias), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 2)]
    model = nn.Sequential(*layers).double().eval()
    with torch.no_grad():
        norm = model[1]
        norm.running_mean.uniform_(-1.0, 1.0)
        norm.running_var.uniform_(0.2, 3.0)
        norm.weight.uniform_(-1.5, 1.5)
        norm.bias.uniform_(-0.5, 0.5)
    return model


INPUTS = {"conv": (2, 3, 6, 6), "convT": (2, 3, 6), "linear": (2, 6)}


def effective_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The parameters and buffers the forward pass reads, keyed as in the state dict.

    Zennit 1.0 merges by shadowing parameters and buffers with instance attributes, so its
    ``state_dict()`` keeps the unmerged values (and a merged bias may replace ``None``); attribute
    access gives what the forward uses.
    """
    state = {}
    for prefix, module in model.named_modules():
        for name in (*module._parameters, *module._buffers):
            value = getattr(module, name)
            if isinstance(value, torch.Tensor):
                state[f"{prefix}.{name}" if prefix else name] = value.detach().clone()
    return state


def merged_state(library, canonizer_factory, model):
    """Effective state while the canonizer is applied, and whether removal restores the state."""
    before = copy.deepcopy(model.state_dict())
    instances = canonizer_factory(library).apply(model)
    try:
        state = effective_state(model)
    finally:
        for instance in instances:
            instance.remove()
    after = model.state_dict()
    restored = after.keys() == before.keys() and all(
        torch.equal(before[key], value) for key, value in after.items()
    )
    return state, restored


CANONIZERS = {
    "sequential": lambda lib: lib.canonizers.SequentialMergeBatchNorm(),
    "named": lambda lib: lib.canonizers.NamedMergeBatchNorm([(["0"], "1")]),
}


@pytest.mark.parametrize("canonizer", list(CANONIZERS))
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("kind", list(INPUTS))
def test_merged_parameters_match_zennit(kind, bias, canonizer):
    """W' and b' of the merged layer equal Zennit's; removal restores the state bit for bit
    (Zennit 1.0 leaves the merged bias of a layer without bias registered, behind a None)."""
    model = make_model(kind, bias)
    ours, ours_restored = merged_state(lrp_core, CANONIZERS[canonizer], copy.deepcopy(model))
    theirs, theirs_restored = merged_state(zennit, CANONIZERS[canonizer], copy.deepcopy(model))
    assert ours_restored
    assert theirs_restored == bias
    for key in ("0.weight", "0.bias"):
        torch.testing.assert_close(ours[key], theirs[key], **TOL)
    for key in ("1.weight", "1.bias", "1.running_mean"):
        torch.testing.assert_close(ours[key], theirs[key], **TOL)  # the identity batch norm
    # Zennit sets var = 1, eps = 0 (which torch 2.10-2.12 reject); ours keeps eps and sets
    # var = 1 - eps: the same identity, var + eps = 1
    eps = model[1].eps
    assert eps > 0
    torch.testing.assert_close(ours["1.running_var"] + eps, theirs["1.running_var"], **TOL)


@pytest.mark.parametrize("kind", list(INPUTS))
def test_merged_output_is_unchanged_like_zennit(kind):
    """While merged, the model gives the original output, in lrp_core as in Zennit 1.0 (Zennit
    0.5 left the identity batch norm computing x / sqrt(1 + eps))."""
    model = make_model(kind)
    x = torch.randn(*INPUTS[kind], dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    expected = model(x)
    for library in (lrp_core, zennit):
        instances = library.canonizers.SequentialMergeBatchNorm().apply(model)
        try:
            merged = model(x)
        finally:
            for instance in instances:
                instance.remove()
        torch.testing.assert_close(merged, expected, rtol=1e-12, atol=1e-12)


def _replace_relu_forward(name, module):
    """Attribute map: every ReLU computes a leaky ReLU instead (slope 0.1)."""
    if isinstance(module, nn.ReLU):
        return {"forward": lambda input: torch.nn.functional.leaky_relu(input, 0.1)}
    return None


@pytest.mark.parametrize("kind", list(INPUTS))
def test_attribute_canonizer_matches_zennit(kind):
    """AttributeCanonizer(attribute_map): same outputs and EpsilonPlus relevances while applied,
    the original forward afterwards."""
    model = make_model(kind)
    x = torch.randn(*INPUTS[kind], dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    expected = model(x)
    results = []
    for library in (lrp_core, zennit):
        copied = copy.deepcopy(model)
        composite = library.composites.EpsilonPlus(
            canonizers=[library.canonizers.AttributeCanonizer(_replace_relu_forward)],
            layer_map=[(nn.ReLU, library.rules.Pass())],
        )
        with composite.context(copied) as modified:
            input = x.clone().requires_grad_()
            output = modified(input)
            (relevance,) = torch.autograd.grad(output, input, torch.ones_like(output))
        results.append((output.detach(), relevance))
        torch.testing.assert_close(copied(x), expected, rtol=0, atol=0)
    torch.testing.assert_close(results[0][0], results[1][0], **TOL)
    torch.testing.assert_close(results[0][1], results[1][1], **TOL)
    assert not torch.equal(results[0][0], expected)  # the canonizer did change the forward


def test_composite_canonizer_matches_zennit():
    """CompositeCanonizer([merge, attributes]) applies both, in order."""
    model = make_model("conv")
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    outputs = []
    for library in (lrp_core, zennit):
        canonizer = library.canonizers.CompositeCanonizer(
            [
                library.canonizers.SequentialMergeBatchNorm(),
                library.canonizers.AttributeCanonizer(_replace_relu_forward),
            ]
        )
        copied = copy.deepcopy(model)
        instances = canonizer.apply(copied)
        try:
            outputs.append(copied(x))
        finally:
            for instance in instances:
                instance.remove()
    torch.testing.assert_close(outputs[0], outputs[1], **TOL)
