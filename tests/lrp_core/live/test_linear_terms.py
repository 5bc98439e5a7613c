"""The closed-form re-run of signed-sum rules on linear layers (``lrp_core.live.linear_terms``).

On a plain Linear/Conv layer, a live explanation computes R_in = Σ_k s_k x_k ⊙ W_kᵀ⋆(R ⊙ φ_k)
with one stacked VJP per distinct factor φ instead of one autograd VJP per term. Reference: the
engine's generic BasicHook formula, run from scratch by ``lrp_core.attribution.Gradient`` (its own
forward pass, one autograd VJP per modified forward), to 1e-6 in float64, for every signed-sum
rule on layers with strides that leave input rows unused, dilation, padding, bias, 1-D and 3-D
convolutions and a Linear layer on 3-D inputs; and layers the closed form must not take (grouped,
reflect padding, a foreign forward hook) still give the reference relevance.
"""

from __future__ import annotations

import copy
import gc
import warnings
import weakref

import pytest
import torch
from torch import nn

from lrp_core import rules
from lrp_core._engine import ModuleCall
from lrp_core.attribution import Gradient
from lrp_core.composites import NameMapComposite
from lrp_core.live import LiveExplanation
from lrp_core.live.linear_terms import LinearTerms, applies

SIGNED_SUM_RULES = [
    rules.Epsilon(0.01),
    rules.Norm(),
    rules.ZPlus(),
    rules.AlphaBeta(2.0, 1.0),
    rules.Gamma(0.3),
    rules.Gamma(0.5, zero_params="bias"),
    rules.ZBox(-2.0, 2.0),
]

#: name → (layer, input shape)
LAYERS = {
    "conv2d stride 2, odd size": (nn.Conv2d(3, 4, 3, stride=2, padding=1), (2, 3, 9, 8)),
    "conv2d dilation, no bias": (nn.Conv2d(2, 3, 3, dilation=2, bias=False), (2, 2, 9, 9)),
    "conv1d": (nn.Conv1d(2, 5, 4, stride=3, padding=2), (3, 2, 17)),
    "conv3d": (nn.Conv3d(2, 2, 2, padding=1), (2, 2, 3, 4, 3)),
    "linear on 3-D input": (nn.Linear(6, 4), (2, 3, 6)),
    "conv2d padding 1": (nn.Conv2d(2, 3, 3, padding=1), (2, 2, 5, 5)),
}
#: layers the closed form leaves to the generic formula
FALLBACK_LAYERS = {
    "grouped conv": (nn.Conv2d(4, 4, 3, groups=2, padding=1), (2, 4, 6, 6)),
    "reflect padding": (nn.Conv2d(2, 3, 3, padding=1, padding_mode="reflect"), (2, 2, 6, 6)),
}


def _live_and_fresh(layer: nn.Module, shape: tuple, rule, hook=None):
    torch.manual_seed(0)
    model = nn.Sequential(copy.deepcopy(layer)).double().eval()
    twin = copy.deepcopy(model)
    if hook is not None:
        model[0].register_forward_hook(hook)
        twin[0].register_forward_hook(hook)
    x = torch.randn(shape, dtype=torch.float64)
    seed = torch.randn_like(model(x))
    composite = NameMapComposite([(("0",), rule)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with LiveExplanation(model, x, composite) as live:
            first = live.explain(target=seed).relevance
            again = live.explain(target=seed).relevance  # from the cached terms
            entries = [v for e in live._cache._entries.values() for v in e.values()]
            used = any(isinstance(v, LinearTerms) for v in entries)
        reference = Gradient(twin, NameMapComposite([(("0",), rule.copy())]))(x, seed)[1]
    return first, again, reference, used


@pytest.mark.parametrize("rule", SIGNED_SUM_RULES, ids=lambda r: type(r).__name__)
@pytest.mark.parametrize("name", list(LAYERS))
def test_closed_form_equals_generic_formula(name, rule):
    layer, shape = LAYERS[name]
    first, again, reference, used = _live_and_fresh(layer, shape, rule)
    assert used
    assert torch.allclose(first, reference, atol=1e-6, rtol=1e-6)
    assert torch.allclose(again, reference, atol=1e-6, rtol=1e-6)


def test_parameter_changes_reuse_partial_outputs(monkeypatch):
    """Changing γ (and switching to rules sharing x⁺ ⋆ W⁺) rebuilds the terms from kept partial
    outputs x_k ⋆ B(W), without running the layer; every re-run equals the reference."""
    layer, shape = LAYERS["conv2d stride 2, odd size"]
    torch.manual_seed(0)
    model = nn.Sequential(nn.ReLU(), copy.deepcopy(layer)).double().eval()
    twin = copy.deepcopy(model)
    x = torch.randn(shape, dtype=torch.float64)
    seed = torch.randn_like(model(x))
    changes = [
        rules.Gamma(0.1),
        rules.Gamma(0.7),
        rules.ZPlus(),
        rules.AlphaBeta(2.0, 1.0, zero_params="bias"),
        rules.Gamma(0.2),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with LiveExplanation(model, x, NameMapComposite([(("1",), rules.Gamma(0.3))])) as live:
            live.explain(target=seed)
            for rule in changes:
                live.assign(rule, name="1")
                result = live.explain(target=seed).relevance
                reference = Gradient(twin, NameMapComposite([(("1",), rule.copy())]))(x, seed)[1]
                assert torch.allclose(result, reference, atol=1e-6, rtol=1e-6)
            runs = []
            monkeypatch.setattr(LinearTerms, "_forward", lambda *args: runs.append(args))
            monkeypatch.setattr(ModuleCall, "rerun", lambda *args: runs.append(args))
            live.assign(rules.Gamma(0.9), name="1")
            result = live.explain(target=seed).relevance
            monkeypatch.undo()
            assert not runs  # the layer did not run: only kept partial outputs
            reference = Gradient(twin, NameMapComposite([(("1",), rules.Gamma(0.9))]))(x, seed)[1]
            assert torch.allclose(result, reference, atol=1e-6, rtol=1e-6)


def test_zbox_with_bounds_per_pixel():
    low = -torch.linspace(1.0, 2.0, 50, dtype=torch.float64).reshape(2, 5, 5)
    rule = rules.ZBox(low, low.neg() + 0.5)
    first, again, reference, used = _live_and_fresh(*LAYERS["conv2d padding 1"], rule)
    assert used
    assert torch.allclose(first, reference, atol=1e-6, rtol=1e-6)
    assert torch.allclose(again, reference, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("name", list(FALLBACK_LAYERS))
def test_layers_left_to_the_generic_formula(name):
    layer, shape = FALLBACK_LAYERS[name]
    first, _, reference, used = _live_and_fresh(layer, shape, rules.Gamma(0.3))
    assert not used
    assert torch.allclose(first, reference, atol=1e-6, rtol=1e-6)


def test_foreign_forward_hook_is_respected():
    """A user hook that halves the output changes the layer's function to 0.5·(W⋆x + b); the
    closed form knows only W, so it must leave such a layer to the generic formula."""

    def halve(module, args, output):
        return output * 0.5

    layer, shape = LAYERS["conv2d stride 2, odd size"]
    first, _, reference, used = _live_and_fresh(layer, shape, rules.Epsilon(0.01), hook=halve)
    assert not used
    assert torch.allclose(first, reference, atol=1e-6, rtol=1e-6)


def test_applies_only_to_plain_linear_layers():
    def call_of(module, x):
        call = ModuleCall(None, module, None, [x], [0])
        call.output_shapes = [module(x).shape]
        return call

    conv = nn.Conv2d(2, 2, 3)
    x = torch.randn(1, 2, 5, 5)
    assert applies(rules.Gamma(), call_of(conv, x))
    assert not applies(rules.Flat(), call_of(conv, x))  # reducer without signs
    assert not applies(rules.Gamma(), call_of(nn.Conv2d(2, 2, 3, groups=2), x))
    assert not applies(rules.Gamma(), call_of(nn.Conv2d(2, 2, 3, padding="same"), x))
    assert not applies(rules.Gamma(), call_of(conv, x[0]))  # unbatched
    odd = nn.Conv2d(2, 2, 3)
    odd.forward = lambda x: nn.Conv2d.forward(odd, x) * 2  # an instance's own forward
    assert not applies(rules.Gamma(), call_of(odd, x))


def test_weight_changed_in_place_is_an_error_naming_the_layer():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3)).double().eval()
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with LiveExplanation(model, x, NameMapComposite([(("0",), rules.Gamma())])) as live:
            live.explain(target=torch.ones_like(live.output))
            with torch.no_grad():
                model[0].weight.mul_(2)
            with pytest.raises(RuntimeError, match="Conv2d.*modified in place"):
                live.explain(target=torch.ones_like(live.output))


def _terms_of(live: LiveExplanation) -> list[LinearTerms]:
    return [v for e in live._cache._entries.values() for v in e.values() if type(v) is LinearTerms]


EDIT_SEQUENCES = {
    "gamma": [rules.Gamma(0.3), rules.Gamma(0.8), rules.Gamma(0.1, zero_params="bias")],
    "zplus": [rules.ZPlus(), rules.ZPlus(zero_params="bias"), rules.AlphaBeta(2.0, 1.0)],
    "epsilon": [rules.Epsilon(0.1), rules.Epsilon(0.2), rules.AlphaBeta(3.0, 2.0)],
}


@pytest.mark.parametrize(
    "first, changes",
    [(rules_[0], [*rules_[1:], rules.Gamma(0.6)]) for rules_ in EDIT_SEQUENCES.values()],
    ids=list(EDIT_SEQUENCES),
)
def test_partial_outputs_with_negative_inputs_and_bias(first, changes):
    """Partial outputs x_k ⋆ B_j(W) + B_j(b) of x itself, x⁺ and x⁻ (the input has both signs, the
    layer a bias, some rules zero it) recombine to the reference after every change."""
    layer, shape = LAYERS["conv2d stride 2, odd size"]
    torch.manual_seed(1)
    model = nn.Sequential(copy.deepcopy(layer)).double().eval()
    twin = copy.deepcopy(model)
    x = torch.randn(shape, dtype=torch.float64)
    seed = torch.randn_like(model(x))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with LiveExplanation(model, x, NameMapComposite([(("0",), first)])) as live:
            live.explain(target=seed)
            for rule in [*changes, first]:
                live.assign(rule, name="0")
                result = live.explain(target=seed).relevance
                reference = Gradient(twin, NameMapComposite([(("0",), rule.copy())]))(x, seed)[1]
                assert torch.allclose(result, reference, atol=1e-6, rtol=1e-6), rule
            assert live._cache._partials  # the edited layer kept its partial outputs


def test_gamma_pair_without_relevance_is_never_made():
    """Gamma's z_n pair gets R·[z < 0]: with relevance only where z > 0 it contributes exactly
    zero, so its factor and weights are not made; once relevance reaches z < 0 they are, and both
    results equal the reference."""
    layer, shape = LAYERS["conv2d padding 1"]
    torch.manual_seed(2)
    model = nn.Sequential(nn.ReLU(), copy.deepcopy(layer)).double().eval()
    twin = copy.deepcopy(model)
    x = torch.randn(shape, dtype=torch.float64)
    z = model(x)
    assert bool((z < 0).any()) and bool((z > 0).any())
    positive_only = torch.rand_like(z) * (z > 0)
    everywhere = torch.randn_like(z)
    rule = rules.Gamma(0.4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with LiveExplanation(model, x, NameMapComposite([(("1",), rule)])) as live:
            for seed, made in ((positive_only, [True, False]), (everywhere, [True, True])):
                result = live.explain(target=seed).relevance
                (terms,) = _terms_of(live)
                assert [group.factor is not None for group in terms.groups] == made
                reference = Gradient(twin, NameMapComposite([(("1",), rule.copy())]))(x, seed)[1]
                assert torch.allclose(result, reference, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("name", ["conv2d padding 1", "linear on 3-D input"])
def test_zbox_bounds_per_channel_fold_into_one_weight(name):
    """Bounds constant per input channel c: l ⊙ (W⁺ᵀ⋆γ) + h ⊙ (W⁻ᵀ⋆γ) = (l W⁺ + h W⁻)ᵀ⋆γ, one
    stacked weight for both bound terms; the relevance equals the reference."""
    layer, shape = LAYERS[name]
    channels = shape[-1] if isinstance(layer, nn.Linear) else shape[1]
    low = -torch.linspace(1.0, 2.0, channels, dtype=torch.float64)
    if not isinstance(layer, nn.Linear):
        low = low.reshape(channels, 1, 1)
    rule = rules.ZBox(low, low.neg() + 0.5)
    torch.manual_seed(0)
    model = nn.Sequential(copy.deepcopy(layer)).double().eval()
    twin = copy.deepcopy(model)
    x = torch.randn(shape, dtype=torch.float64)
    seed = torch.randn_like(model(x))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with LiveExplanation(model, x, NameMapComposite([(("0",), rule)])) as live:
            result = live.explain(target=seed).relevance
            (terms,) = _terms_of(live)
            (group,) = terms.groups
            assert group.constant and len(group.terms) == 1  # x's term, then the folded bounds
        reference = Gradient(twin, NameMapComposite([(("0",), rule.copy())]))(x, seed)[1]
    assert torch.allclose(result, reference, atol=1e-6, rtol=1e-6)


def test_evicted_terms_are_freed_at_once():
    """Terms hold layer-sized tensors; once the cache drops them (after newer parameter values)
    they must go by reference counting alone, without waiting for the cycle collector."""
    layer, shape = LAYERS["conv2d padding 1"]
    model = nn.Sequential(nn.ReLU(), copy.deepcopy(layer)).double().eval()
    x = torch.randn(shape, dtype=torch.float64)
    seed = torch.randn_like(model(x)) * (model(x) > 0)  # Gamma's z_n pair stays unmade
    gc.disable()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with LiveExplanation(model, x, NameMapComposite([(("1",), rules.Gamma())])) as live:
                live.explain(target=seed)
                (first,) = _terms_of(live)
                assert first.groups[1].factor is None
                kept = weakref.ref(first)
                del first
                for gamma in (0.5, 0.6, 0.7):
                    live.set_params("1", gamma=gamma)
                    live.explain(target=seed)
                assert kept() is None
    finally:
        gc.enable()
