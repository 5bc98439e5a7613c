"""Parity with Zennit 1.0 for public class members a port may use (issue 12's surface test).

Attributor.inactive and the gradient attributors' grad, MergeBatchNorm's type tuples, merge
function and kept parameters, AttributeCanonizer.attribute_keys and NameLayerMapComposite's
members: the same code runs against lrp_core and the reference library (a black-box oracle) and
what is observable is compared, in float64.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import lrp_core
import lrp_core.attribution
import lrp_core.canonizers
import lrp_core.composites
import lrp_core.rules

from .zennit_oracle import load

zennit = load()
LIBRARIES = pytest.mark.parametrize("lib", [lrp_core, zennit], ids=["lrp_core", "zennit"])
TOL = {"rtol": 1e-12, "atol": 1e-12}


def _model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3)).double().eval()


def _input() -> torch.Tensor:
    return torch.randn(2, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))


SEED = torch.tensor([[1.0, 0.0, -2.0], [0.0, 3.0, 0.0]], dtype=torch.float64)


def _seed_fn(output: torch.Tensor) -> torch.Tensor:
    return output * SEED


# ---------------------------------------------------------------- attributors


def _inactive_gradient(lib) -> torch.Tensor:
    model = _model()
    with lib.attribution.Gradient(model, lib.composites.EpsilonPlus()) as attributor:
        with attributor.inactive():
            input = _input().requires_grad_()
            (gradient,) = torch.autograd.grad(model(input), input, SEED)
    return gradient


def test_attributor_inactive_gives_the_plain_gradient():
    """Inside ``with attributor.inactive():`` the registered rules pass the plain gradient."""
    input = _input().requires_grad_()
    (plain,) = torch.autograd.grad(_model()(input), input, SEED)
    ours, theirs = _inactive_gradient(lrp_core), _inactive_gradient(zennit)
    torch.testing.assert_close(ours, theirs, **TOL)
    torch.testing.assert_close(ours, plain, **TOL)
    with lrp_core.attribution.Gradient(_model(), lrp_core.composites.EpsilonPlus()) as attributor:
        input = _input().requires_grad_()
        (lrp,) = torch.autograd.grad(attributor.model(input), input, SEED)
    assert not torch.allclose(lrp, plain)  # the rules do change the gradient outside the block


def test_attributor_inactive_without_composite_changes_nothing():
    """Zennit raises AttributeError here (no composite); lrp_core gives a no-op context."""
    attributor = lrp_core.attribution.Gradient(_model())
    with attributor.inactive():
        output, relevance = attributor(_input(), SEED)
    torch.testing.assert_close(
        relevance, lrp_core.attribution.Gradient(_model())(_input(), SEED)[1]
    )


ATTRIBUTORS = {
    "Gradient": {},
    "SmoothGrad": {"noise_level": 0.2, "n_iter": 3},
    "IntegratedGradients": {"n_iter": 4},
}


def _grad(lib, name: str, seed) -> tuple[torch.Tensor, torch.Tensor]:
    model = _model()
    cls = getattr(lib.attribution, name)
    with cls(model, lib.composites.EpsilonPlus(), **ATTRIBUTORS[name]) as attributor:
        output, gradient = attributor.grad(_input(), seed)
    return output.detach(), gradient


@pytest.mark.parametrize("name", list(ATTRIBUTORS))
def test_grad_is_one_rule_modified_pass(name):
    """``grad(input, attr_output_fn)``: one forward and backward pass with the registered rules
    at the input itself (no noise, no path), the same in both libraries; for Gradient it is the
    attribution itself."""
    ours = _grad(lrp_core, name, _seed_fn)
    theirs = _grad(zennit, name, _seed_fn)
    torch.testing.assert_close(ours[0], theirs[0], **TOL)
    torch.testing.assert_close(ours[1], theirs[1], **TOL)
    with lrp_core.attribution.Gradient(_model(), lrp_core.composites.EpsilonPlus()) as gradient:
        expected = gradient(_input(), _seed_fn)
    torch.testing.assert_close(ours[1], expected[1], **TOL)


def test_grad_leaves_the_callers_tensor_alone():
    """Zennit sets requires_grad on the caller's input; lrp_core differentiates a detached copy
    (same gradient)."""
    input = _input()
    with lrp_core.attribution.Gradient(_model()) as attributor:
        _, ours = attributor.grad(input, _seed_fn)
    assert not input.requires_grad
    _, theirs = zennit.attribution.Gradient(_model()).grad(_input(), _seed_fn)
    torch.testing.assert_close(ours, theirs, **TOL)


# ---------------------------------------------------------------- batch norm merge


def _bn_pair(dtype=torch.float64) -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3)).to(dtype).eval()
    with torch.no_grad():
        model[1].running_mean.uniform_(-1.0, 1.0)
        model[1].running_var.uniform_(0.2, 3.0)
        model[1].weight.uniform_(0.5, 1.5)
        model[1].bias.uniform_(-0.5, 0.5)
    return model


MODULE_TYPES = [
    nn.Linear(2, 2),
    nn.Conv1d(1, 1, 1),
    nn.Conv2d(1, 1, 1),
    nn.Conv3d(1, 1, 1),
    nn.ConvTranspose2d(1, 1, 1),
    nn.BatchNorm1d(2),
    nn.BatchNorm2d(2),
    nn.BatchNorm3d(2),
    nn.LayerNorm(2),
    nn.ReLU(),
    nn.Bilinear(2, 2, 2),
]


@pytest.mark.parametrize("attribute", ["linear_type", "batch_norm_type"])
@pytest.mark.parametrize("module", MODULE_TYPES, ids=lambda m: type(m).__name__)
def test_merge_batch_norm_types(attribute, module):
    ours = getattr(lrp_core.canonizers.SequentialMergeBatchNorm, attribute)
    theirs = getattr(zennit.canonizers.SequentialMergeBatchNorm, attribute)
    assert isinstance(ours, tuple) and isinstance(theirs, tuple)
    assert isinstance(module, ours) == isinstance(module, theirs)


def test_narrowed_linear_type_is_respected():
    """A subclass that narrows linear_type merges only those layers (as in the reference)."""
    for lib in (lrp_core, zennit):

        class LinearOnly(lib.canonizers.SequentialMergeBatchNorm):
            linear_type = (nn.Linear,)

        assert LinearOnly().apply(_bn_pair()) == []


def test_merge_batch_norm_function():
    """MergeBatchNorm.merge_batch_norm(modules, batch_norm) merges for good: the same model
    output and merged conv parameters as the reference's, in float64."""
    x = torch.randn(2, 2, 5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    expected = _bn_pair()(x)
    merged = []
    for lib in (lrp_core, zennit):
        model = _bn_pair()
        assert lib.canonizers.MergeBatchNorm.merge_batch_norm([model[0]], model[1]) is None
        torch.testing.assert_close(model(x), expected, **TOL)
        merged.append((model[0].weight.detach(), model[0].bias.detach()))
    torch.testing.assert_close(merged[0], merged[1], **TOL)


def test_kept_parameters_are_the_originals():
    """linear_params and batch_norm_params of a registered merge hold the original objects."""
    records = []
    for lib in (lrp_core, zennit):
        model = _bn_pair()
        originals = (model[0].weight, model[0].bias, model[1].running_mean, model[1].running_var)
        (instance,) = lib.canonizers.SequentialMergeBatchNorm().apply(model)
        try:
            ((weight, bias),) = instance.linear_params
            params = instance.batch_norm_params
            kept = (weight, bias, params["running_mean"], params["running_var"])
            assert all(a is b for a, b in zip(kept, originals, strict=True))
            records.append((sorted(params), params["eps"]))
        finally:
            instance.remove()
    assert records[0] == records[1]


# ---------------------------------------------------------------- attribute canonizer, composites


@LIBRARIES
def test_attribute_keys(lib):
    def attribute_map(name, module):
        return {"note": 1, "extra": nn.Identity()} if isinstance(module, nn.Linear) else None

    canonizer = lib.canonizers.AttributeCanonizer(attribute_map)
    assert canonizer.attribute_keys is None
    instances = canonizer.apply(_model())
    assert [instance.attribute_keys for instance in instances] == [["note", "extra"]] * 2
    for instance in instances:
        instance.remove()


def _name_layer_relevance(lib) -> torch.Tensor:
    composite = lib.composites.NameLayerMapComposite(
        name_map=[(("0",), lib.rules.ZPlus())],
        layer_map=[(nn.Linear, lib.rules.Epsilon(0.1))],
    )
    assert [type(member).__name__ for member in composite.composites] == [
        "NameMapComposite",
        "LayerMapComposite",
    ]
    with lib.attribution.Gradient(_model(), composite) as attributor:
        return attributor(_input(), SEED)[1]


def test_name_layer_map_composite_members():
    """NameLayerMapComposite is a mixed composite of a name map and a layer map composite."""
    torch.testing.assert_close(
        _name_layer_relevance(lrp_core), _name_layer_relevance(zennit), **TOL
    )
    composite = lrp_core.composites.NameLayerMapComposite(
        name_map=[("0", lrp_core.rules.ZPlus())], layer_map=[(nn.ReLU, lrp_core.rules.Pass())]
    )
    assert composite.name_map is composite.composites[0].name_map
    assert composite.layer_map is composite.composites[1].layer_map


# ---------------------------------------------------------------- hooks and parameter modifiers


def _logging_rule(lib, log: list):
    class LoggingEpsilon(lib.rules.Epsilon):
        def pre_forward(self, module, args, kwargs):
            log.append(("pre", type(module).__name__, tuple(args[0].shape)))
            return super().pre_forward(module, args, kwargs)

        def post_forward(self, module, args, kwargs, output):
            log.append(("post", type(module).__name__, tuple(output.shape)))
            return super().post_forward(module, args, kwargs, output)

    return LoggingEpsilon(epsilon=0.1)


def test_overridden_forward_hooks_are_the_registered_ones():
    """A rule subclass that overrides pre_forward/post_forward (calling super) sees the same
    calls in the same order, and the relevance is unchanged (the reference's own Epsilon)."""
    logs, results = [], []
    for lib in (lrp_core, zennit):
        log: list = []
        composite = lib.composites.LayerMapComposite([(nn.Linear, _logging_rule(lib, log))])
        with lib.attribution.Gradient(_model(), composite) as attributor:
            results.append(attributor(_input(), SEED)[1])
        logs.append(log)
    assert logs[0] == logs[1] and len(logs[0]) == 4
    reference = zennit.composites.LayerMapComposite([(nn.Linear, zennit.rules.Epsilon(0.1))])
    with zennit.attribution.Gradient(_model(), reference) as attributor:
        expected = attributor(_input(), SEED)[1]
    torch.testing.assert_close(results[0], expected, **TOL)
    torch.testing.assert_close(results[1], expected, **TOL)


def _modifier(param: torch.Tensor, name: str) -> torch.Tensor:
    return param.clamp(min=0) * 2


STATE_DICT_CASES = {
    "all": ({}, True),
    "weight": ({"param_keys": ["weight"]}, True),
    "zero-bias": ({"zero_params": "bias"}, True),
    "no-bias-layer": ({}, False),
    "missing-optional": ({"param_keys": ["weight", "scale"], "require_params": False}, True),
}


@pytest.mark.parametrize("case", list(STATE_DICT_CASES))
def test_param_mod_state_dicts(case):
    """ParamMod.state_dicts(module): the same (original, modified) parameter values; the
    original ones are the module's own tensors, and the module is left unchanged."""
    kwargs, bias = STATE_DICT_CASES[case]
    torch.manual_seed(0)
    layer = nn.Linear(3, 2, bias=bias).double()
    weight = layer.weight
    ours = lrp_core.core.ParamMod(_modifier, **kwargs).state_dicts(layer)
    theirs = zennit.core.ParamMod(_modifier, **kwargs).state_dicts(layer)
    for our, their in zip(ours, theirs, strict=True):
        assert our.keys() == their.keys()
        for key in our:
            torch.testing.assert_close(our[key], their[key], rtol=0, atol=0)
    assert all(value is getattr(layer, key) for key, value in ours[0].items())
    assert layer.weight is weight


def test_param_mod_state_dicts_missing_parameter():
    for lib in (lrp_core, zennit):
        with pytest.raises(RuntimeError, match="scale"):
            lib.core.ParamMod(_modifier, param_keys=["scale"]).state_dicts(nn.Linear(2, 2))


def _backward_logging_rule(lib, log: list):
    class LoggingEpsilon(lib.rules.Epsilon):
        def pre_backward(self, module, grad_input, grad_output):
            log.append([grad.detach().clone() for grad in grad_output])
            return super().pre_backward(module, grad_input, grad_output)

    return LoggingEpsilon(epsilon=0.1)


def test_overridden_pre_backward_sees_the_gradient_at_the_output():
    """pre_backward(module, grad_input, grad_output) runs once per hooked call, last layer
    first, with the relevance arriving at the output (the same values as the reference's)."""
    logs = []
    for lib in (lrp_core, zennit):
        log: list = []
        rule = _backward_logging_rule(lib, log)
        composite = lib.composites.LayerMapComposite([(nn.Linear, rule)])
        with lib.attribution.Gradient(_model(), composite) as attributor:
            attributor(_input(), SEED)
        logs.append(log)
    assert len(logs[0]) == len(logs[1]) == 2
    torch.testing.assert_close(logs[0][0], [SEED], **TOL)
    for ours, theirs in zip(*logs, strict=True):
        torch.testing.assert_close(ours, theirs, **TOL)


def _gradient_times_input_hook(lib):
    """The custom-rule spec's gradient × input hook, with Zennit 1.0's forward signature."""

    class GradientTimesInput(lib.core.Hook):
        def forward(self, module, args, kwargs, output):
            self.stored_tensors["input"] = args
            self.stored_tensors["scale"] = kwargs.get("scale")

        def backward(self, module, grad_input, grad_output):
            scale = self.stored_tensors["scale"]
            factor = 1.0 if scale is None else scale.detach()
            return tuple(
                grad * x * factor
                for grad, x in zip(grad_input, self.stored_tensors["input"], strict=True)
            )

    return GradientTimesInput()


class _Scaled(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 3).double()

    def forward(self, x, scale=None):
        out = self.linear(x)
        return out if scale is None else out * scale


@pytest.mark.parametrize("keyword", [False, True], ids=["args", "kwargs"])
def test_zennit_style_forward_gets_args_and_kwargs(keyword):
    """A Hook whose forward has Zennit 1.0's signature (module, args, kwargs, output) gets the
    call's positional and keyword arguments; the same relevance as in the reference."""
    results = []
    for lib in (lrp_core, zennit):
        torch.manual_seed(0)
        module = _Scaled()
        handles = _gradient_times_input_hook(lib).register(module)
        try:
            x = _input().requires_grad_()
            kwargs = {"scale": torch.tensor(2.0, dtype=torch.float64)} if keyword else {}
            output = module(x, **kwargs)
            (relevance,) = torch.autograd.grad(output, x, SEED)
        finally:
            handles.remove()
        results.append(relevance)
    torch.testing.assert_close(results[0], results[1], **TOL)
    factor = 2.0 if keyword else 1.0
    torch.manual_seed(0)
    weight = _Scaled().linear.weight.detach()
    expected = _input() * ((SEED * factor) @ weight) * factor
    torch.testing.assert_close(results[0], expected, **TOL)
