"""Composites: which rule each module gets, and end-to-end behaviour with the rules.

The expected mappings are written out by hand from the presets' definitions (issue 3):
base map = activations -> Pass, Sum and average pools -> Norm, batch norms -> Pass; EpsilonPlus:
convolutions -> ZPlus, dense -> Epsilon; EpsilonAlpha2Beta1: convolutions -> AlphaBeta(2, 1);
*Flat: the first linear-type layer -> Flat; EpsilonGammaBox: convolutions -> Gamma, dense ->
Epsilon, first convolution -> ZBox; ExcitationBackprop: Sum/avg pools -> Norm, linear types ->
ZPlus; GuidedBackprop / DeconvNet / BetaSmooth: ReLU only. A user ``layer_map`` goes first.
"""

import warnings
from collections import OrderedDict

import pytest
import torch
from torch import nn

from lrp_core import composites, rules
from lrp_core.canonizers import SequentialMergeBatchNorm
from lrp_core.composites import (
    COMPOSITES,
    BetaSmooth,
    DeconvNet,
    EpsilonAlpha2Beta1,
    EpsilonAlpha2Beta1Flat,
    EpsilonGammaBox,
    EpsilonPlus,
    EpsilonPlusFlat,
    ExcitationBackprop,
    GuidedBackprop,
    LayerMapComposite,
    MixedComposite,
    NameLayerMapComposite,
    NameMapComposite,
    PlainGradientFallbackWarning,
    SpecialFirstLayerMapComposite,
    UnknownCompositeError,
    get_composite,
    register_composite,
)
from lrp_core.core import Hook
from lrp_core.layer import Sum
from lrp_core.types import Convolution, Linear

from .model_state import assert_restored, randomize_batch_norms, snapshot, tensor_objects


class Residual(nn.Module):
    """``relu(conv(x)) + x`` written with an explicit Sum module."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.relu = nn.ReLU()
        self.sum = Sum()

    def forward(self, x):
        return self.sum(torch.stack([self.relu(self.conv(x)), x], dim=-1))


def small_net(bias: bool = True) -> nn.Sequential:
    """Every layer kind the presets distinguish, with stable names."""
    return nn.Sequential(
        OrderedDict(
            conv1=nn.Conv2d(3, 4, 3, padding=1, bias=bias),
            bn=nn.BatchNorm2d(4),
            relu1=nn.ReLU(),
            block=Residual(4),
            avg=nn.AvgPool2d(2),
            max=nn.MaxPool2d(2),
            flat=nn.Flatten(),
            drop=nn.Dropout(),
            fc1=nn.Linear(4 * 2 * 2, 6, bias=bias),
            relu2=nn.ReLU(),
            fc2=nn.Linear(6, 3, bias=bias),
        )
    ).eval()


def described(composite, model):
    """Register, read ``{name: (rule class, hyperparameters)}`` of the registered copies, remove."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PlainGradientFallbackWarning)
        with composite.context(model):
            registered = composite.registered_rules
            # the registered rules are copies of the templates, one per module
            assert all(registered[name] is not composite.assignments[name] for name in registered)
            return {
                name: (
                    type(rule),
                    rule.hyperparameters() if hasattr(rule, "hyperparameters") else {},
                )
                for name, rule in registered.items()
            }


def rule_types(description):
    return {name: rule_type for name, (rule_type, _) in description.items()}


BASE = {"bn": rules.Pass, "relu1": rules.Pass, "block.relu": rules.Pass, "block.sum": rules.Norm}
BASE_TAIL = {"avg": rules.Norm, "relu2": rules.Pass}


@pytest.mark.parametrize(
    "composite, convs, dense, first",
    [
        (EpsilonPlus(), rules.ZPlus, rules.Epsilon, rules.ZPlus),
        (EpsilonAlpha2Beta1(), rules.AlphaBeta, rules.Epsilon, rules.AlphaBeta),
        (EpsilonPlusFlat(), rules.ZPlus, rules.Epsilon, rules.Flat),
        (EpsilonAlpha2Beta1Flat(), rules.AlphaBeta, rules.Epsilon, rules.Flat),
        (EpsilonGammaBox(low=-3.0, high=3.0), rules.Gamma, rules.Epsilon, rules.ZBox),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, composites.Composite) else "",
)
def test_lrp_presets_map_each_layer_type(composite, convs, dense, first):
    expected = {
        **BASE,
        **BASE_TAIL,
        "conv1": first,
        "block.conv": convs,
        "fc1": dense,
        "fc2": dense,
    }
    assert rule_types(described(composite, small_net())) == expected


def test_preset_rule_parameters_reach_the_registered_rules():
    model = small_net()
    gamma_box = described(
        EpsilonGammaBox(low=-2.0, high=5.0, epsilon=0.1, gamma=0.5, stabilizer=1e-4), model
    )
    assert gamma_box["conv1"][1]["low"] == -2.0 and gamma_box["conv1"][1]["high"] == 5.0
    assert gamma_box["block.conv"][1]["gamma"] == 0.5
    assert gamma_box["fc1"][1]["epsilon"] == 0.1
    assert gamma_box["block.sum"][1]["stabilizer"] in (1e-4, rules.Stabilizer(1e-4))
    alpha_beta = described(EpsilonAlpha2Beta1(epsilon=0.2), model)
    assert (alpha_beta["conv1"][1]["alpha"], alpha_beta["conv1"][1]["beta"]) == (2.0, 1.0)
    assert alpha_beta["fc2"][1]["epsilon"] == 0.2
    smooth = described(BetaSmooth(beta_smooth=3.0), model)
    assert smooth == {
        "relu1": (rules.ReLUBetaSmooth, {"beta_smooth": 3.0}),
        "block.relu": (rules.ReLUBetaSmooth, {"beta_smooth": 3.0}),
        "relu2": (rules.ReLUBetaSmooth, {"beta_smooth": 3.0}),
    }


@pytest.mark.parametrize(
    "composite, relu_rule",
    [
        (GuidedBackprop(), rules.ReLUGuidedBackprop),
        (DeconvNet(), rules.ReLUDeconvNet),
        (BetaSmooth(), rules.ReLUBetaSmooth),
    ],
    ids=["guided_backprop", "deconvnet", "beta_smooth"],
)
def test_gradient_modifiers_touch_only_relus(composite, relu_rule):
    expected = {"relu1": relu_rule, "block.relu": relu_rule, "relu2": relu_rule}
    assert rule_types(described(composite, small_net())) == expected


def test_excitation_backprop_mapping():
    expected = {
        "conv1": rules.ZPlus,
        "block.conv": rules.ZPlus,
        "block.sum": rules.Norm,
        "avg": rules.Norm,
        "fc1": rules.ZPlus,
        "fc2": rules.ZPlus,
    }
    assert rule_types(described(ExcitationBackprop(), small_net())) == expected


def test_first_layer_is_the_first_matching_module_in_named_modules_order():
    # the first linear-type layer here is dense; the first convolution comes after it
    model = nn.Sequential(
        nn.Linear(4, 8), nn.Unflatten(1, (2, 2, 2)), nn.Conv2d(2, 2, 1), nn.Conv2d(2, 2, 1)
    )
    assert rule_types(described(EpsilonPlusFlat(), model)) == {
        "0": rules.Flat,
        "2": rules.ZPlus,
        "3": rules.ZPlus,
    }
    gamma_box = EpsilonGammaBox(low=-1.0, high=1.0)
    assert rule_types(described(gamma_box, model)) == {
        "0": rules.Epsilon,
        "2": rules.ZBox,
        "3": rules.Gamma,
    }
    # a second registration starts over: the first layer gets its rule again
    assert rule_types(described(gamma_box, model))["2"] is rules.ZBox


def test_user_layer_map_and_first_map_are_prepended_and_win():
    model = small_net()
    composite = EpsilonPlus(
        layer_map=[(nn.Conv2d, rules.Epsilon(epsilon=0.5)), (nn.ReLU, rules.ReLUDeconvNet())]
    )
    mapping = described(composite, model)
    assert mapping["conv1"] == (rules.Epsilon, {"epsilon": 0.5, "zero_params": None})
    assert mapping["block.conv"][0] is rules.Epsilon and mapping["relu1"][0] is rules.ReLUDeconvNet
    assert mapping["bn"][0] is rules.Pass  # defaults still apply to the rest
    flat = EpsilonPlusFlat(
        first_map=[(Linear, rules.WSquare())], layer_map=[(Convolution, rules.Pass())]
    )
    mapping = rule_types(described(flat, model))
    assert mapping["conv1"] is rules.WSquare and mapping["block.conv"] is rules.Pass


def test_generic_layer_map_and_special_first_composites():
    model = small_net()
    layer = LayerMapComposite(
        [((nn.Conv2d, nn.Linear), rules.Epsilon()), (nn.Linear, rules.ZPlus())]
    )
    assert set(rule_types(described(layer, model)).values()) == {rules.Epsilon}
    special = SpecialFirstLayerMapComposite(
        layer_map=[(Linear, rules.Epsilon())], first_map=[(nn.Linear, rules.Flat())]
    )
    mapping = rule_types(described(special, model))
    assert mapping == {
        "conv1": rules.Epsilon,
        "block.conv": rules.Epsilon,
        "fc1": rules.Flat,
        "fc2": rules.Epsilon,
    }


def test_name_maps():
    model = small_net()
    by_name = NameMapComposite(
        [
            (("conv1", "fc2"), rules.Epsilon(epsilon=0.25)),
            ("fc2", rules.ZPlus()),
            (("avg",), rules.Norm()),
        ]
    )
    assert rule_types(described(by_name, model)) == {
        "conv1": rules.Epsilon,
        "fc2": rules.Epsilon,  # first matching entry wins
        "avg": rules.Norm,
    }
    both = NameLayerMapComposite(
        name_map=[(("fc1",), rules.Flat())], layer_map=[(nn.Linear, rules.Epsilon())]
    )
    assert rule_types(described(both, model)) == {"fc1": rules.Flat, "fc2": rules.Epsilon}
    assert rule_types(described(NameLayerMapComposite(), model)) == {}


def test_mixed_composite_asks_members_in_order_each_with_its_own_first_layer():
    model = small_net()
    mixed = MixedComposite(
        [NameMapComposite([(("fc2",), rules.Pass())]), EpsilonPlusFlat()],
        canonizers=[SequentialMergeBatchNorm()],
    )
    mapping = rule_types(described(mixed, model))
    assert mapping["fc2"] is rules.Pass and mapping["conv1"] is rules.Flat
    assert mapping["fc1"] is rules.Epsilon and mapping["bn"] is rules.Pass
    assert mixed.report_fallback
    with pytest.raises(TypeError, match="expected composites"):
        MixedComposite([EpsilonPlus(), "epsilon_plus"])


def test_mixed_composite_members_see_modules_claimed_by_earlier_members():
    """Regression (parity with the reference library): every member is asked about every module,
    so a member's first-layer state advances as if it ran alone. When the name map claims conv1,
    EpsilonPlusFlat's first linear-type layer is still conv1 (already taken), so block.conv gets
    the ordinary convolution rule ZPlus, not Flat."""
    model = small_net()
    mixed = MixedComposite([NameMapComposite([(("conv1",), rules.Pass())]), EpsilonPlusFlat()])
    mapping = rule_types(described(mixed, model))
    assert mapping["conv1"] is rules.Pass
    assert mapping["block.conv"] is rules.ZPlus
    assert mapping["fc1"] is rules.Epsilon


def test_malformed_maps_raise_type_errors():
    with pytest.raises(TypeError, match=r"\(type, rule\) pairs"):
        LayerMapComposite([nn.Linear])
    with pytest.raises(TypeError, match="module type or a tuple of types"):
        LayerMapComposite([("Linear", rules.Epsilon())])
    with pytest.raises(TypeError, match="expected a rule"):
        LayerMapComposite([(nn.Linear, rules.Epsilon)])  # the class, not an instance
    with pytest.raises(TypeError, match="module names must be strings"):
        NameMapComposite([((1, 2), rules.Epsilon())])


def test_registry_lookup_and_errors():
    assert get_composite("epsilon_plus") is EpsilonPlus
    assert get_composite("EpsilonPlus") is EpsilonPlus  # the class name works too
    assert COMPOSITES["epsilon_gamma_box"] is EpsilonGammaBox
    assert set(COMPOSITES) >= {
        "epsilon_gamma_box",
        "epsilon_plus",
        "epsilon_alpha2_beta1",
        "epsilon_plus_flat",
        "epsilon_alpha2_beta1_flat",
        "excitation_backprop",
        "guided_backprop",
        "deconvnet",
        "beta_smooth",
    }
    with pytest.raises(UnknownCompositeError) as error:
        get_composite("epsilon_pluss")
    assert isinstance(error.value, KeyError) and isinstance(error.value, ValueError)
    assert "'epsilon_pluss'" in str(error.value) and "epsilon_plus_flat" in str(error.value)

    @register_composite("test_only_composite")
    class TestOnly(LayerMapComposite):
        def __init__(self):
            super().__init__([(nn.Linear, rules.Epsilon())])

    try:
        assert get_composite("test_only_composite") is TestOnly
        with pytest.raises(ValueError, match="already taken by TestOnly"):
            register_composite("test_only_composite")(EpsilonPlus)
    finally:
        COMPOSITES.pop("test_only_composite")
    with pytest.raises(TypeError, match="not a Composite subclass"):
        register_composite("not_a_composite")(dict)
    with pytest.raises(TypeError, match="non-empty string"):
        register_composite("")


def no_hooks_left(model: nn.Module) -> bool:
    return all(
        not (m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks)
        for m in model.modules()
    )


def test_context_removes_hooks_when_the_forward_raises():
    model = small_net()
    composite = EpsilonPlus(canonizers=[SequentialMergeBatchNorm()])
    with pytest.raises(RuntimeError), composite.context(model):
        assert not no_hooks_left(model)
        model(torch.randn(1, 5, 8, 8))  # 5 channels instead of 3
    assert no_hooks_left(model) and composite.hooks == []
    assert composite.registered_rules == {}
    assert model.conv1.bias is not None and model.bn.eps == nn.BatchNorm2d(4).eps


class Exploding(Hook):
    """A rule whose backward fails."""

    def backward(self, module, grad_input, grad_output):
        raise RuntimeError("exploding rule")


def test_context_restores_everything_when_the_backward_raises():
    model = randomize_batch_norms(small_net())
    before, objects = snapshot(model), tensor_objects(model)
    composite = LayerMapComposite([(nn.ReLU, Exploding())], canonizers=[SequentialMergeBatchNorm()])
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    with pytest.raises(RuntimeError, match="exploding rule"), composite.context(model):
        model(x).sum().backward()
    assert no_hooks_left(model) and composite.hooks == []
    assert_restored(model, before, objects)


def test_preview_lists_the_rules_without_registering():
    model = randomize_batch_norms(small_net())
    before, objects = snapshot(model), tensor_objects(model)
    composite = EpsilonPlusFlat(canonizers=[SequentialMergeBatchNorm()])
    preview = composite.preview(model)
    assert no_hooks_left(model)
    assert_restored(model, before, objects)
    assert list(preview) == [name for name, _ in model.named_modules()]
    assert isinstance(preview["conv1"], rules.Flat) and isinstance(preview["bn"], rules.Pass)
    assert preview[""] is None and preview["max"] is None and preview["block"] is None
    matched = {name for name, rule in preview.items() if rule is not None}
    assert matched == set(described(composite, model))
    with composite.context(model), pytest.raises(RuntimeError, match="call remove"):
        composite.preview(model)


def plain_gradient(model, x, seed):
    x = x.detach().requires_grad_()
    (grad,) = torch.autograd.grad(model(x), x, seed)
    return grad


def test_inactive_gives_the_plain_gradient():
    torch.manual_seed(0)
    model = small_net().double()
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    seed = torch.eye(3, dtype=torch.float64)[[0, 2]]
    expected = plain_gradient(model, x, seed)
    composite = EpsilonPlus()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PlainGradientFallbackWarning)
        with composite.context(model):
            with composite.inactive():
                inactive = plain_gradient(model, x, seed)
            active = plain_gradient(model, x, seed)
    torch.testing.assert_close(inactive, expected, rtol=1e-12, atol=1e-12)
    assert not torch.allclose(active, expected)
    assert no_hooks_left(model)


class WithLayerNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(2, 4, 3)
        self.norm = nn.LayerNorm(6)
        self.identity, self.flatten, self.drop = nn.Identity(), nn.Flatten(), nn.Dropout(0.1)
        self.max = nn.MaxPool1d(2)
        self.embed_scale = nn.Bilinear(3, 3, 2)  # unused in forward, but a leaf with parameters

    def forward(self, x):
        return self.drop(self.flatten(self.max(self.identity(self.norm(self.conv(x))))))


def test_fallback_warning_names_unmatched_modules_once_per_registration():
    model = WithLayerNorm().eval()
    composite = EpsilonPlus()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with composite.context(model):
            model(torch.randn(1, 2, 8))
    fallbacks = [w for w in caught if issubclass(w.category, PlainGradientFallbackWarning)]
    assert len(fallbacks) == 1
    message = str(fallbacks[0].message)
    assert "norm (LayerNorm)" in message and "embed_scale (Bilinear)" in message
    for quiet in ("identity", "flatten", "drop", "max", "conv"):
        assert f"{quiet} (" not in message
    assert composite.fallback_modules == ["norm", "embed_scale"]
    assert composite.matched_modules == ["conv"]

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            with composite.context(model):
                pass
        with GuidedBackprop().context(model):  # gradient modifiers do not report
            pass
    assert sum(issubclass(w.category, PlainGradientFallbackWarning) for w in caught) == 2


def test_no_fallback_warning_when_everything_is_matched():
    with warnings.catch_warnings():
        warnings.simplefilter("error", PlainGradientFallbackWarning)
        composite = EpsilonPlusFlat()
        with composite.context(small_net()):
            pass
    assert composite.fallback_modules == []


def bias_free_relu_conv_net() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(2, 5, 3, padding=1, bias=False),
        nn.ReLU(),
        nn.Conv2d(5, 6, 3, bias=False),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Conv2d(6, 4, 2, bias=False),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4, 3, bias=False),
    ).double()


@pytest.mark.parametrize("composite_type", [EpsilonPlus, EpsilonAlpha2Beta1, ExcitationBackprop])
def test_relevance_is_conserved_on_a_bias_free_relu_conv_net(composite_type):
    """Sum of input relevance = sum of the output relevance (the seed), for rules that conserve
    on bias-free layers (ZPlus, AlphaBeta with alpha - beta = 1, Epsilon with tiny epsilon, Pass,
    Norm); float64, tolerance 1e-6. Stabilizers are 1e-12 so that they do not absorb relevance."""
    torch.manual_seed(1)
    model = bias_free_relu_conv_net()
    x = torch.randn(3, 2, 6, 6, dtype=torch.float64, requires_grad=True)
    keywords = {"stabilizer": 1e-12}
    if composite_type is not ExcitationBackprop:
        keywords["epsilon"] = 1e-12
    with composite_type(**keywords).context(model):
        output = model(x)
        seed = torch.eye(3, dtype=torch.float64)[output.argmax(dim=1)] * output
        (relevance,) = torch.autograd.grad(output, x, seed)
    torch.testing.assert_close(relevance.sum(dim=(1, 2, 3)), seed.sum(dim=1), rtol=1e-6, atol=0)
    assert no_hooks_left(model)


@pytest.mark.parametrize(
    "make, parameter",
    [
        (lambda: EpsilonPlus(epsilon=-1.0), "epsilon"),
        (lambda: EpsilonPlus(stabilizer=-1.0), "stabilizer"),
        (lambda: EpsilonAlpha2Beta1Flat(epsilon=float("nan")), "epsilon"),
        (lambda: EpsilonGammaBox(low=-1.0, high=1.0, gamma=-0.5), "gamma"),
        (lambda: EpsilonGammaBox(low=2.0, high=1.0), "low"),
        (lambda: ExcitationBackprop(stabilizer=-1e-3), "stabilizer"),
        (lambda: BetaSmooth(beta_smooth=0.0), "beta_smooth"),
    ],
)
def test_bad_rule_parameters_raise_value_errors_naming_them(make, parameter):
    with pytest.raises(ValueError, match=parameter):
        make()
