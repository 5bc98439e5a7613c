"""Parity of every named and generic composite (with canonizers and layer-map additions) with the
reference library Zennit, used as a black-box oracle.

The same composite (same keywords) is applied to two identical float64 copies of a small CNN
(Conv, BatchNorm, ReLU, MaxPool, AvgPool, Linear) and the relevance R_in = ∂/∂x ⟨f(x), R⟩ under
the composite's rules must agree to rtol = atol = 1e-10. The rule formulas themselves are checked
against explicit Jacobians in test_rules.py; here only "same numbers as Zennit" is checked.
"""

from __future__ import annotations

import copy
import types
import warnings

import pytest
import torch
from torch import nn

import lrp_core.canonizers
import lrp_core.composites
import lrp_core.core
import lrp_core.rules
import lrp_core.types

from .zennit_oracle import load

zennit = load()
OURS = types.SimpleNamespace(
    composites=lrp_core.composites,
    canonizers=lrp_core.canonizers,
    rules=lrp_core.rules,
    types=lrp_core.types,
    core=lrp_core.core,
)
THEIRS = types.SimpleNamespace(
    composites=zennit.composites,
    canonizers=zennit.canonizers,
    rules=zennit.rules,
    types=zennit.types,
    core=zennit.core,
)
TOL = dict(rtol=1e-10, atol=1e-10)


def make_model(seed: int = 0, bias: bool = True) -> nn.Sequential:
    """A small CNN for 3×8×8 inputs, float64, eval mode, with non-trivial batch-norm statistics."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, bias=bias),  # 0
        nn.BatchNorm2d(4),  # 1
        nn.ReLU(),  # 2
        nn.MaxPool2d(2),  # 3
        nn.Conv2d(4, 4, 3, padding=1, bias=bias),  # 4
        nn.ReLU(),  # 5
        nn.AvgPool2d(2),  # 6
        nn.Flatten(),  # 7
        nn.Linear(16, 6, bias=bias),  # 8
        nn.ReLU(),  # 9
        nn.Linear(6, 3, bias=bias),  # 10
    ).double()
    batch_norm = model[1]
    with torch.no_grad():
        batch_norm.running_mean.uniform_(-0.5, 0.5)
        batch_norm.running_var.uniform_(0.5, 2.0)
        batch_norm.weight.uniform_(0.5, 1.5)
        batch_norm.bias.uniform_(-0.5, 0.5)
    return model.eval()


def make_input(seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(2, 3, 8, 8, dtype=torch.float64, generator=generator)


def composite_relevance(composite, model: nn.Module, x: torch.Tensor, seed: int = 2):
    """(output, R_in) of a private copy of ``model`` under ``composite`` for a random seed R."""
    model = copy.deepcopy(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lrp_core reports plain-gradient fallbacks (MaxPool)
        with composite.context(model) as modified:
            x = x.clone().requires_grad_()
            out = modified(x)
            generator = torch.Generator().manual_seed(seed)
            relevance = torch.randn(out.shape, dtype=out.dtype, generator=generator)
            (result,) = torch.autograd.grad(out, x, relevance)
    return out.detach(), result


def assert_parity(build, model: nn.Module | None = None, x: torch.Tensor | None = None):
    """``build(namespace)`` makes the composite from either library; outputs and R_in agree."""
    model = make_model() if model is None else model
    x = make_input() if x is None else x
    out_ours, ours = composite_relevance(build(OURS), model, x)
    out_theirs, theirs = composite_relevance(build(THEIRS), model, x)
    torch.testing.assert_close(out_ours, out_theirs, **TOL)
    torch.testing.assert_close(ours, theirs, **TOL)


def merge_bn(ns):
    return [ns.canonizers.SequentialMergeBatchNorm()]


NAMED = {
    "EpsilonGammaBox": lambda ns, **kw: ns.composites.EpsilonGammaBox(low=-3.0, high=3.0, **kw),
    "EpsilonPlus": lambda ns, **kw: ns.composites.EpsilonPlus(**kw),
    "EpsilonAlpha2Beta1": lambda ns, **kw: ns.composites.EpsilonAlpha2Beta1(**kw),
    "EpsilonPlusFlat": lambda ns, **kw: ns.composites.EpsilonPlusFlat(**kw),
    "EpsilonAlpha2Beta1Flat": lambda ns, **kw: ns.composites.EpsilonAlpha2Beta1Flat(**kw),
    "ExcitationBackprop": lambda ns, **kw: ns.composites.ExcitationBackprop(**kw),
    "GuidedBackprop": lambda ns, **kw: ns.composites.GuidedBackprop(**kw),
    "DeconvNet": lambda ns, **kw: ns.composites.DeconvNet(**kw),
    "BetaSmooth": lambda ns, **kw: ns.composites.BetaSmooth(**kw),
}
LRP_NAMED = [name for name in NAMED if name not in ("GuidedBackprop", "DeconvNet", "BetaSmooth")]


@pytest.mark.parametrize("canonized", [False, True], ids=["plain", "merged-bn"])
@pytest.mark.parametrize("name", list(NAMED))
def test_named_composite_matches_zennit(name, canonized):
    """Each named composite with its defaults, without and with SequentialMergeBatchNorm."""
    if canonized:
        assert_parity(lambda ns: NAMED[name](ns, canonizers=merge_bn(ns)))
    else:
        assert_parity(lambda ns: NAMED[name](ns))


@pytest.mark.parametrize("name", LRP_NAMED)
def test_named_composite_with_parameters_matches_zennit(name):
    """Non-default stabilizer / ε and zero_params='bias', forwarded to the composite's rules."""
    keywords = {"stabilizer": 0.1, "zero_params": "bias"}
    if name != "ExcitationBackprop":
        keywords["epsilon"] = 0.25
    if name == "EpsilonGammaBox":
        keywords["gamma"] = 0.5
    assert_parity(lambda ns: NAMED[name](ns, canonizers=merge_bn(ns), **keywords))


def test_beta_smooth_with_parameter_matches_zennit():
    assert_parity(lambda ns: ns.composites.BetaSmooth(beta_smooth=2.5))


def test_epsilon_gamma_box_with_tensor_bounds_matches_zennit():
    """ZBox on the first convolution with per-pixel bounds (the usual normalised-image box)."""
    low = torch.full((1, 3, 8, 8), -2.0, dtype=torch.float64)
    high = torch.full((1, 3, 8, 8), 2.5, dtype=torch.float64)
    low[:, 1] = -1.0
    assert_parity(lambda ns: ns.composites.EpsilonGammaBox(low=low, high=high))


LAYER_MAP_ADDITIONS = {
    # prepended to the defaults, so these win over the composite's own entries
    "linear-zplus": lambda ns: [(nn.Linear, ns.rules.ZPlus())],
    "relu-betasmooth": lambda ns: [(nn.ReLU, ns.rules.ReLUBetaSmooth(3.0))],
    "conv-gamma": lambda ns: [(ns.types.Convolution, ns.rules.Gamma(1.0))],
    "maxpool-norm": lambda ns: [(ns.types.MaxPool, ns.rules.Norm())],
}


@pytest.mark.parametrize("addition", list(LAYER_MAP_ADDITIONS))
@pytest.mark.parametrize("name", ["EpsilonPlus", "EpsilonGammaBox", "EpsilonPlusFlat"])
def test_layer_map_additions_match_zennit(name, addition):
    """layer_map entries are prepended to the composite's map (first match wins)."""
    assert_parity(lambda ns: NAMED[name](ns, layer_map=LAYER_MAP_ADDITIONS[addition](ns)))


@pytest.mark.parametrize("name", ["EpsilonPlusFlat", "EpsilonGammaBox"])
def test_first_map_matches_zennit(name):
    """A custom first_map replaces the rule of the first linear-type layer."""
    assert_parity(lambda ns: NAMED[name](ns, first_map=[(ns.types.Linear, ns.rules.WSquare())]))


def test_guided_backprop_with_layer_map_matches_zennit():
    assert_parity(
        lambda ns: ns.composites.GuidedBackprop(layer_map=[(nn.Linear, ns.rules.Epsilon())])
    )


def _layer_map(ns):
    return [
        (ns.types.Activation, ns.rules.Pass()),
        (ns.types.AvgPool, ns.rules.Norm()),
        (ns.types.Convolution, ns.rules.Gamma(0.3)),
        (nn.Linear, ns.rules.Epsilon(0.2)),
    ]


def _name_map(ns):
    return [
        (["0"], ns.rules.Flat()),
        (["4", "8"], ns.rules.AlphaBeta(1.0, 0.0)),
        (["2", "5", "9"], ns.rules.Pass()),
    ]


GENERIC = {
    "LayerMapComposite": lambda ns: ns.composites.LayerMapComposite(layer_map=_layer_map(ns)),
    "LayerMapComposite-merged": lambda ns: ns.composites.LayerMapComposite(
        layer_map=_layer_map(ns), canonizers=merge_bn(ns)
    ),
    "SpecialFirstLayerMapComposite": lambda ns: ns.composites.SpecialFirstLayerMapComposite(
        layer_map=_layer_map(ns), first_map=[(ns.types.Convolution, ns.rules.ZBox(-3.0, 3.0))]
    ),
    "NameMapComposite": lambda ns: ns.composites.NameMapComposite(name_map=_name_map(ns)),
    "NameLayerMapComposite": lambda ns: ns.composites.NameLayerMapComposite(
        name_map=_name_map(ns), layer_map=_layer_map(ns)
    ),
    # Zennit raises TypeError for layer_map=None (its default); lrp_core reads None as "no layer
    # map", which the oracle spells layer_map=[]
    "NameLayerMapComposite-names-only": lambda ns: ns.composites.NameLayerMapComposite(
        name_map=_name_map(ns), **({} if ns is OURS else {"layer_map": []})
    ),
    "MixedComposite": lambda ns: ns.composites.MixedComposite(
        [
            ns.composites.NameMapComposite(name_map=[(["10"], ns.rules.ZPlus())]),
            ns.composites.LayerMapComposite(layer_map=_layer_map(ns)),
        ]
    ),
    "MixedComposite-merged": lambda ns: ns.composites.MixedComposite(
        [
            ns.composites.NameMapComposite(name_map=_name_map(ns)),
            ns.composites.EpsilonPlusFlat(),
        ],
        canonizers=merge_bn(ns),
    ),
    # canonizers of the members (not of the MixedComposite itself)
    "MixedComposite-member-canonizers": lambda ns: ns.composites.MixedComposite(
        [
            ns.composites.NameMapComposite(name_map=[(["10"], ns.rules.ZPlus())]),
            ns.composites.EpsilonAlpha2Beta1Flat(canonizers=merge_bn(ns)),
        ]
    ),
}


@pytest.mark.parametrize("name", list(GENERIC))
def test_generic_composite_matches_zennit(name):
    """The generic map composites: type maps, name maps, both, first-layer maps and mixtures."""
    assert_parity(GENERIC[name])


@pytest.mark.parametrize("name", ["EpsilonPlusFlat", "EpsilonGammaBox", "DeconvNet"])
def test_composite_on_bias_free_model_matches_zennit(name):
    assert_parity(lambda ns: NAMED[name](ns, canonizers=merge_bn(ns)), model=make_model(bias=False))


def test_inactive_gives_the_plain_gradient_like_zennit():
    """Inside composite.inactive() every hook is off: both give the plain gradient."""
    results = []
    for ns in (OURS, THEIRS):
        model = make_model()
        x = make_input().requires_grad_()
        composite = ns.composites.EpsilonPlusFlat()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with composite.context(model) as modified, composite.inactive():
                out = modified(x)
                (grad,) = torch.autograd.grad(out, x, torch.ones_like(out))
        results.append(grad)
    model, x = make_model(), make_input().requires_grad_()
    (plain,) = torch.autograd.grad(model(x).sum(), x)
    torch.testing.assert_close(results[0], results[1], **TOL)
    torch.testing.assert_close(results[0], plain, **TOL)


# deliberate differences of the type groups: (group, torch class, reason)
TYPE_DIFFERENCES = {
    ("BatchNorm", nn.SyncBatchNorm),  # a batch norm by the issue's own words ("batch norms")
    ("Activation", nn.Mish),  # element-wise activation added to torch after Zennit's list
}
TORCH_MODULES = sorted(
    (
        value
        for value in vars(nn).values()
        if isinstance(value, type) and issubclass(value, nn.Module)
    ),
    key=lambda cls: cls.__name__,
)
GROUPS = [
    "Linear",
    "Convolution",
    "ConvolutionStandard",
    "ConvolutionTranspose",
    "BatchNorm",
    "AvgPool",
    "MaxPool",
    "Activation",
]


@pytest.mark.parametrize("group", GROUPS)
def test_type_groups_match_zennit(group):
    """issubclass(torch class, group) agrees with Zennit for every torch.nn module class, apart
    from the deliberate differences listed in TYPE_DIFFERENCES."""
    ours, theirs = getattr(lrp_core.types, group), getattr(zennit.types, group)
    differing = {cls for cls in TORCH_MODULES if issubclass(cls, ours) != issubclass(cls, theirs)}
    expected = {cls for name, cls in TYPE_DIFFERENCES if name == group}
    assert differing == expected


def test_composite_registry_matches_zennit():
    """The same names in the registry of composites, mapping to the same composites."""
    assert sorted(lrp_core.composites.COMPOSITES) == sorted(zennit.composites.COMPOSITES)
    for name, composite in lrp_core.composites.COMPOSITES.items():
        assert composite.__name__ == zennit.composites.COMPOSITES[name].__name__


@pytest.mark.parametrize("dim", [-1, 1])
def test_sum_layer_and_its_norm_rule_match_zennit(dim):
    """layer.Sum(dim) sums over ``dim``; under EpsilonPlus it gets the Norm rule."""
    import lrp_core.layer

    x = make_input()[:, :2].clone()
    stacked = torch.stack([x, 2 * x.flip(-1)], dim=dim if dim == -1 else 1)
    for library in (lrp_core, zennit):
        module = (lrp_core.layer if library is lrp_core else zennit.layer).Sum(dim=dim)
        torch.testing.assert_close(module(stacked), stacked.sum(dim), **TOL)
    results = []
    for library, layer in ((OURS, lrp_core.layer), (THEIRS, zennit.layer)):
        model = nn.Sequential(layer.Sum(dim=dim))
        results.append(composite_relevance(library.composites.EpsilonPlus(), model, stacked))
    torch.testing.assert_close(results[0][1], results[1][1], **TOL)
