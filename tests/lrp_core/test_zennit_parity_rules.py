"""Parity of every rule, BasicHook, ParamMod and Stabilizer with the reference library Zennit.

Zennit is used as a black-box oracle: the same rule (same parameters) is registered on two
identical float64 copies of a small layer, both get the same input x and incoming relevance R, and
the relevances R_in = ∂/∂x ⟨f(x), R⟩ under the hook must agree to rtol = atol = 1e-10. The formulas
each rule implements are stated in issue 3 and checked against explicit Jacobians in
test_rules.py; here only "same numbers as Zennit" is checked.
"""

from __future__ import annotations

import copy
import types

import pytest
import torch

import lrp_core.core
import lrp_core.rules

from .zennit_oracle import load

zennit = load()
OURS = types.SimpleNamespace(core=lrp_core.core, rules=lrp_core.rules)
THEIRS = types.SimpleNamespace(core=zennit.core, rules=zennit.rules)
TOL = dict(rtol=1e-10, atol=1e-10)

LAYERS = {
    "linear": (lambda bias: torch.nn.Linear(5, 4, bias=bias), (5,)),
    "conv1d": (lambda bias: torch.nn.Conv1d(2, 3, 3, padding=1, bias=bias), (2, 6)),
    "conv2d": (lambda bias: torch.nn.Conv2d(2, 3, 3, stride=2, padding=1, bias=bias), (2, 5, 5)),
    "convT2d": (lambda bias: torch.nn.ConvTranspose2d(2, 2, 3, stride=2, bias=bias), (2, 3, 3)),
}


def make_layer(kind: str, bias: bool, seed: int = 0) -> tuple[torch.nn.Module, tuple]:
    torch.manual_seed(seed)
    factory, in_shape = LAYERS[kind]
    return factory(bias).double(), in_shape


def make_input(in_shape: tuple, signs: str, seed: int = 1) -> torch.Tensor:
    """A batch of two float64 samples: ``mixed`` signs, ``nonneg`` |x|, ``relu`` max(x, 0)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(2, *in_shape, dtype=torch.float64, generator=generator)
    if signs == "relu":  # non-negative with exact zeros, as after a ReLU
        return x.clamp(min=0)
    return x.abs() if signs == "nonneg" else x


def hooked_relevance(rule, layer: torch.nn.Module, x: torch.Tensor, seed: int = 2):
    """R_in of ``rule`` on a private copy of ``layer`` for x and a fixed random relevance R."""
    layer = copy.deepcopy(layer)
    handles = rule.register(layer)
    try:
        x = x.clone().requires_grad_()
        out = layer(x)
        generator = torch.Generator().manual_seed(seed)
        relevance = torch.randn(out.shape, dtype=out.dtype, generator=generator)
        (result,) = torch.autograd.grad(out, x, relevance)
    finally:
        handles.remove()
    return out.detach(), result


def assert_parity(build, layer, x):
    """``build(namespace)`` makes the rule from either library; outputs and R_in must agree."""
    out_ours, ours = hooked_relevance(build(OURS), layer, x)
    out_theirs, theirs = hooked_relevance(build(THEIRS), layer, x)
    torch.testing.assert_close(out_ours, out_theirs, **TOL)
    torch.testing.assert_close(ours, theirs, **TOL)


# rule builders: ns is either library's namespace (ns.rules, ns.core). Default parameters run on
# every layer with and without bias and on both input kinds; the variants on a smaller grid.
DEFAULT_RULES = {
    "epsilon": lambda ns: ns.rules.Epsilon(),
    "zplus": lambda ns: ns.rules.ZPlus(),
    "alphabeta": lambda ns: ns.rules.AlphaBeta(),
    "gamma": lambda ns: ns.rules.Gamma(),
    "zbox": lambda ns: ns.rules.ZBox(low=-3.0, high=3.0),
    "flat": lambda ns: ns.rules.Flat(),
    "wsquare": lambda ns: ns.rules.WSquare(),
    "norm": lambda ns: ns.rules.Norm(),
}
VARIANT_RULES = {
    "epsilon-0.25": lambda ns: ns.rules.Epsilon(epsilon=0.25),
    "epsilon-zerobias": lambda ns: ns.rules.Epsilon(epsilon=0.1, zero_params="bias"),
    "zplus-0.5": lambda ns: ns.rules.ZPlus(stabilizer=0.5),
    "zplus-zerobias": lambda ns: ns.rules.ZPlus(zero_params="bias"),
    "alpha1beta0": lambda ns: ns.rules.AlphaBeta(alpha=1.0, beta=0.0),
    "alpha3beta2": lambda ns: ns.rules.AlphaBeta(3.0, 2.0, stabilizer=0.1),
    "alphabeta-zerobias": lambda ns: ns.rules.AlphaBeta(zero_params=["bias"]),
    "gamma-2": lambda ns: ns.rules.Gamma(gamma=2.0, stabilizer=0.01),
    "gamma-0": lambda ns: ns.rules.Gamma(gamma=0.0),
    "gamma-zerobias": lambda ns: ns.rules.Gamma(gamma=0.5, zero_params="bias"),
    "zbox-asym": lambda ns: ns.rules.ZBox(low=-1.0, high=2.5, stabilizer=0.01),
    "zbox-zerobias": lambda ns: ns.rules.ZBox(-2.0, 2.0, zero_params="bias"),
    "flat-0.5": lambda ns: ns.rules.Flat(stabilizer=0.5),
    "flat-zerobias": lambda ns: ns.rules.Flat(zero_params="bias"),
    "wsquare-0.5": lambda ns: ns.rules.WSquare(stabilizer=0.5),
    "wsquare-zerobias": lambda ns: ns.rules.WSquare(zero_params="bias"),
    "norm-0.5": lambda ns: ns.rules.Norm(stabilizer=0.5),
    "epsilon-stab-clip": lambda ns: ns.rules.Epsilon(ns.core.Stabilizer(0.3, clip=True)),
    "zplus-stab-norm": lambda ns: ns.rules.ZPlus(ns.core.Stabilizer(0.1, norm_scale=True)),
    "gamma-stab-all": lambda ns: ns.rules.Gamma(
        0.25, ns.core.Stabilizer(0.2, clip=True, norm_scale=True)
    ),
    "alphabeta-stab-dim": lambda ns: ns.rules.AlphaBeta(
        stabilizer=ns.core.Stabilizer(0.2, norm_scale=True, dim=1)
    ),
}


@pytest.mark.parametrize("signs", ["mixed", "nonneg"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("kind", list(LAYERS))
@pytest.mark.parametrize("rule", list(DEFAULT_RULES))
def test_default_rule_matches_zennit(rule, kind, bias, signs):
    """R_in(lrp_core.rules.X()) == R_in(zennit.rules.X()) on Linear/Conv/ConvTranspose."""
    layer, in_shape = make_layer(kind, bias)
    assert_parity(DEFAULT_RULES[rule], layer, make_input(in_shape, signs))


# each variant on every layer kind: with bias on inputs of both signs (Linear, Conv2d), without
# bias on non-negative inputs (Conv1d, ConvTranspose2d)
VARIANT_SETTINGS = [
    ("linear", True, "mixed"),
    ("conv2d", True, "mixed"),
    ("conv1d", False, "nonneg"),
    ("convT2d", False, "nonneg"),
]


@pytest.mark.parametrize("kind", ["linear", "conv2d"])
@pytest.mark.parametrize("rule", list(DEFAULT_RULES))
def test_default_rule_on_inputs_with_zeros_matches_zennit(rule, kind):
    """Inputs with exact zeros (after a ReLU): x⁺/x⁻ splits and sign(0) = +1 agree."""
    layer, in_shape = make_layer(kind, bias=True)
    assert_parity(DEFAULT_RULES[rule], layer, make_input(in_shape, "relu"))


@pytest.mark.parametrize(("kind", "bias", "signs"), VARIANT_SETTINGS)
@pytest.mark.parametrize("rule", list(VARIANT_RULES))
def test_rule_with_parameters_matches_zennit(rule, kind, bias, signs):
    """Non-default ε/α/β/γ/bounds, zero_params='bias' and Stabilizer options (clip, norm_scale,
    dim)."""
    layer, in_shape = make_layer(kind, bias=bias)
    assert_parity(VARIANT_RULES[rule], layer, make_input(in_shape, signs))


@pytest.mark.parametrize("kind", ["linear", "conv2d"])
def test_zbox_with_tensor_bounds_matches_zennit(kind):
    """ZBox with per-element bounds l, h of the input's shape, and with a larger batch than the
    input's (cut to the input's batch size): z = f(x) − f(l; θ⁺) − f(h; θ⁻)."""
    layer, in_shape = make_layer(kind, bias=True)
    x = make_input(in_shape, "mixed")
    low = -1.0 - torch.rand(3, *in_shape, dtype=torch.float64)
    high = 1.0 + torch.rand(3, *in_shape, dtype=torch.float64)
    assert_parity(lambda ns: ns.rules.ZBox(low[:2], high[:2]), layer, x)
    assert_parity(lambda ns: ns.rules.ZBox(low, high), layer, x)


ACTIVATION_RULES = {
    "pass": lambda ns: ns.rules.Pass(),
    "deconvnet": lambda ns: ns.rules.ReLUDeconvNet(),
    "guidedbackprop": lambda ns: ns.rules.ReLUGuidedBackprop(),
    "betasmooth": lambda ns: ns.rules.ReLUBetaSmooth(),
    "betasmooth-2": lambda ns: ns.rules.ReLUBetaSmooth(beta_smooth=2.0),
}


@pytest.mark.parametrize("rule", list(ACTIVATION_RULES))
def test_activation_rule_matches_zennit(rule):
    """Pass: R_in = R; DeconvNet: max(R, 0); GuidedBackprop: ∇·[R > 0]; BetaSmooth: σ(βx)·R."""
    assert_parity(ACTIVATION_RULES[rule], torch.nn.ReLU(), make_input((3, 4), "mixed"))


OTHER_MODULES = {
    "avgpool": lambda: torch.nn.AvgPool2d(2),
    "tanh": torch.nn.Tanh,
    "batchnorm": lambda: torch.nn.BatchNorm2d(2).double().eval(),
}


@pytest.mark.parametrize(
    ("rule", "module"),
    [
        ("norm", "avgpool"),
        ("epsilon", "avgpool"),
        ("norm", "batchnorm"),
        ("pass", "batchnorm"),
        ("pass", "tanh"),
        ("norm", "tanh"),
    ],
)
def test_rules_on_other_modules_match_zennit(rule, module):
    """Norm/Epsilon on pools and batch norms, Pass on same-shape modules, Norm on a tanh."""
    builders = {**DEFAULT_RULES, **ACTIVATION_RULES}
    assert_parity(builders[rule], OTHER_MODULES[module](), make_input((2, 4, 4), "mixed"))


def _positive(param, name):
    return param.clamp(min=0)


def _negative(param, name):
    return param.clamp(max=0)


BASIC_HOOKS = {
    "defaults": lambda ns: ns.core.BasicHook(),
    "lrp-zero": lambda ns: ns.core.BasicHook(
        input_modifiers=[lambda input: input],
        param_modifiers=[lambda param, _: param],
        output_modifiers=[lambda output: output],
        gradient_mapper=lambda out_grad, outputs: [out_grad / outputs[0]],
        reducer=lambda inputs, gradients: inputs[0] * gradients[0],
    ),
    # two input modifiers only: the param/output lists are completed with identities
    "two-inputs": lambda ns: ns.core.BasicHook(
        input_modifiers=[lambda x: x.clamp(min=0), lambda x: x.clamp(max=0)],
        reducer=lambda inputs, gradients: inputs[0] * gradients[0] - 0.5 * inputs[1] * gradients[1],
    ),
    "parammods": lambda ns: ns.core.BasicHook(
        input_modifiers=[lambda x: x.clamp(min=0), lambda x: x.clamp(max=0)],
        param_modifiers=[
            ns.core.ParamMod(_positive, zero_params="bias"),
            ns.core.ParamMod(_negative, param_keys=["weight"]),
        ],
        output_modifiers=[lambda out: 2 * out, lambda out: out],
        gradient_mapper=lambda out_grad, outputs: [
            out_grad / ns.core.stabilize(outputs[0] + outputs[1], 0.1) for _ in outputs
        ],
        reducer=lambda inputs, gradients: inputs[0] * gradients[0] + inputs[1] * gradients[1],
    ),
    "optional-bias": lambda ns: ns.core.BasicHook(
        param_modifiers=[
            ns.core.ParamMod(
                lambda p, name: p**2, param_keys=["weight", "bias"], require_params=False
            )
        ],
        gradient_mapper=lambda out_grad, outputs: out_grad / ns.core.stabilize(outputs[0], 0.5),
        reducer=lambda inputs, gradients: gradients[0],
    ),
    "builtin-mods": lambda ns: ns.core.BasicHook(
        input_modifiers=[lambda x: x + 0.0, lambda x: x + 0.0],
        param_modifiers=[ns.rules.GammaMod(0.5, min=0.0), ns.rules.ClampMod(max=0.0)],
        gradient_mapper=lambda out_grad, outputs: [
            out_grad / ns.core.stabilize(o, 1e-3, clip=True) for o in outputs
        ],
        reducer=lambda inputs, gradients: inputs[0] * (gradients[0] - gradients[1]),
    ),
    "nomod": lambda ns: ns.core.BasicHook(param_modifiers=[ns.rules.NoMod(zero_params="bias")]),
}


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("kind", ["linear", "conv2d"])
@pytest.mark.parametrize("hook", list(BASIC_HOOKS))
def test_basic_hook_matches_zennit(hook, kind, bias):
    """Custom BasicHooks (modifier lists, ParamMod param_keys/zero_params/require_params,
    GammaMod/ClampMod/NoMod, mapper, reducer) give the same R_in as Zennit's BasicHook."""
    layer, in_shape = make_layer(kind, bias)
    assert_parity(BASIC_HOOKS[hook], layer, make_input(in_shape, "mixed"))


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"epsilon": 0.5},
        {"epsilon": 0.5, "clip": True},
        {"epsilon": 0.1, "norm_scale": True},
        {"epsilon": 0.1, "norm_scale": True, "dim": 1},
        {"epsilon": 0.1, "norm_scale": True, "dim": (1, 2)},
        {"epsilon": 2.0, "clip": True, "norm_scale": True},
    ],
    ids=str,
)
def test_stabilize_matches_zennit(options):
    """stabilize(z, ε, clip, norm_scale, dim) and Stabilizer(...)(z) equal Zennit's, zeros
    included (sign(0) = +1)."""
    z = make_input((3, 4), "mixed")
    z[0, 0, :2] = 0.0
    ours = lrp_core.core.stabilize(z, **options)
    torch.testing.assert_close(ours, zennit.core.stabilize(z, **options), **TOL)
    torch.testing.assert_close(
        lrp_core.core.Stabilizer(**options)(z), zennit.core.Stabilizer(**options)(z), **TOL
    )


def test_aliased_identity_input_modifiers_follow_the_formula_not_zennit():
    """Deliberate difference. With K input modifiers that all return the *same* tensor object,
    Zennit's reducer receives, for every k, the sum Σ_j v_j of all K gradients instead of v_k (so
    the default reducer counts the relevance K times). The issue's formula R_in = Σ_k x_k ⊙ v_k,
    v_k = J_kᵀ(R / stab(z_k)), needs v_k per term, which lrp_core gives; Zennit agrees with it as
    soon as the modifiers return distinct tensors (x + 0)."""
    layer, in_shape = make_layer("linear", bias=True)
    x = make_input(in_shape, "mixed")

    def hook(ns, input_modifier):
        return ns.core.BasicHook(
            input_modifiers=[input_modifier, input_modifier],
            param_modifiers=[ns.rules.GammaMod(0.5, min=0.0), ns.rules.ClampMod(max=0.0)],
        )

    _, ours = hooked_relevance(hook(OURS, lambda x: x), layer, x)
    _, theirs_distinct = hooked_relevance(hook(THEIRS, lambda x: x + 0.0), layer, x)
    _, theirs_aliased = hooked_relevance(hook(THEIRS, lambda x: x), layer, x)
    torch.testing.assert_close(ours, theirs_distinct, **TOL)
    torch.testing.assert_close(theirs_aliased, 2 * theirs_distinct, **TOL)


def test_missing_required_parameter_raises_runtime_error_like_zennit():
    """ParamMod(param_keys=['scale']) on a layer without such a parameter: both raise a
    RuntimeError (during the backward pass), unless require_params=False, where both skip the
    missing key. (A Linear without bias has ``bias = None`` registered: both skip it silently.)"""
    layer, in_shape = make_layer("linear", bias=False)
    x = make_input(in_shape, "mixed")
    for ns in (OURS, THEIRS):
        hook = ns.core.BasicHook(
            param_modifiers=[ns.core.ParamMod(_positive, param_keys=["scale"])]
        )
        with pytest.raises(RuntimeError, match="scale"):
            hooked_relevance(hook, layer, x)
    for keys in (["weight", "scale"], ["weight", "bias"]):
        assert_parity(
            lambda ns, keys=keys: ns.core.BasicHook(
                param_modifiers=[ns.core.ParamMod(_positive, param_keys=keys, require_params=False)]
            ),
            layer,
            x,
        )


@pytest.mark.parametrize(
    ("value", "cut"),
    [
        (2.0, False),
        (2.0, True),
        (torch.ones(1, 3), False),
        (torch.arange(6.0).reshape(2, 3), False),
        (torch.arange(12.0).reshape(4, 3), True),
    ],
    ids=["scalar", "scalar-cut", "row", "full", "cut-batch"],
)
def test_expand_matches_zennit(value, cut):
    """expand(tensor, shape, cut_batch_dim): numbers and tensors broadcast to ``shape``; with
    cut_batch_dim a longer batch is cut to the first entries. (lrp_core also broadcasts
    lower-rank tensors such as a (3,) vector, where Zennit raises.)"""
    ours = lrp_core.core.expand(value, (2, 3), cut_batch_dim=cut)
    theirs = zennit.core.expand(value, (2, 3), cut_batch_dim=cut)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def test_collect_leaves_matches_zennit():
    """collect_leaves: the modules without children, in named_modules() order (a module without
    children is its own leaf)."""
    model = torch.nn.Sequential(
        torch.nn.Linear(2, 2),
        torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Sequential()),
        torch.nn.Tanh(),
    )
    for module in (model, torch.nn.ReLU()):
        ours = list(lrp_core.core.collect_leaves(module))
        theirs = list(zennit.core.collect_leaves(module))
        assert [id(leaf) for leaf in ours] == [id(leaf) for leaf in theirs]
