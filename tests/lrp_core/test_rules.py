"""Every rule against its matrix-form float64 reference (tests/lrp_core/references.py)."""

from __future__ import annotations

import pytest
import torch

from lrp_core.core import Stabilizer
from lrp_core.rules import (
    AlphaBeta,
    ClampMod,
    Epsilon,
    Flat,
    Gamma,
    GammaMod,
    Norm,
    Pass,
    ReLUBetaSmooth,
    ReLUDeconvNet,
    ReLUGuidedBackprop,
    WSquare,
    ZBox,
    ZPlus,
)

from . import references as ref

TOL = dict(rtol=1e-10, atol=1e-10)

LAYERS = {
    "linear": (lambda bias: torch.nn.Linear(5, 4, bias=bias), (5,)),
    "conv1d": (lambda bias: torch.nn.Conv1d(2, 3, 3, padding=1, bias=bias), (2, 6)),
    "conv2d": (lambda bias: torch.nn.Conv2d(2, 3, 3, stride=2, bias=bias), (2, 5, 5)),
    "conv3d": (lambda bias: torch.nn.Conv3d(2, 2, 2, bias=bias), (2, 3, 3, 3)),
    "convT1d": (lambda bias: torch.nn.ConvTranspose1d(2, 3, 3, stride=2, bias=bias), (2, 4)),
    "convT2d": (lambda bias: torch.nn.ConvTranspose2d(2, 2, 3, stride=2, bias=bias), (2, 3, 3)),
}


def make_layer(kind: str, bias: bool, seed: int = 0) -> tuple[torch.nn.Module, tuple]:
    torch.manual_seed(seed)
    factory, in_shape = LAYERS[kind]
    return factory(bias).double(), in_shape


def hooked_relevance(rule, layer, x, relevance):
    """The relevance our hook gives: VJP of the hooked layer with ``relevance`` as grad_output."""
    handles = rule.register(layer)
    try:
        x = x.clone().requires_grad_()
        out = layer(x)
        (result,) = torch.autograd.grad(out, x, relevance)
    finally:
        handles.remove()
    return result


def inputs(in_shape, signs: str, seed: int = 1):
    torch.manual_seed(seed)
    x = torch.randn(2, *in_shape, dtype=torch.float64)
    return x.abs() if signs == "nonneg" else x


CASES = [
    ("epsilon", lambda: Epsilon(1e-6), ref.epsilon),
    ("epsilon-big", lambda: Epsilon(0.5), lambda *a: ref.epsilon(*a, eps=0.5)),
    ("zplus", lambda: ZPlus(), ref.zplus),
    ("alphabeta", lambda: AlphaBeta(2.0, 1.0), ref.alpha_beta),
    ("alpha1beta0", lambda: AlphaBeta(1.0, 0.0), lambda *a: ref.alpha_beta(*a, 1.0, 0.0)),
    ("gamma", lambda: Gamma(0.25), ref.gamma),
    ("gamma-big", lambda: Gamma(2.0), lambda *a: ref.gamma(*a, g=2.0)),
    ("flat", lambda: Flat(), ref.flat),
    ("wsquare", lambda: WSquare(), ref.wsquare),
]


class GenericGamma(Gamma):
    """Gamma forced through the generic BasicHook path (no linear-type shortcut)."""

    def _fast(self, module):
        return False


CASES.append(("gamma-generic", lambda: GenericGamma(0.25), ref.gamma))


@pytest.mark.parametrize("signs", ["mixed", "nonneg"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("kind", list(LAYERS))
@pytest.mark.parametrize("name,rule,reference", CASES, ids=[c[0] for c in CASES])
def test_rule_matches_reference(name, rule, reference, kind, bias, signs):
    layer, in_shape = make_layer(kind, bias)
    x = inputs(in_shape, signs)
    out_shape = layer(x).shape
    torch.manual_seed(2)
    relevance = torch.randn(out_shape, dtype=torch.float64)
    expected = ref.per_sample(layer, x, relevance, reference)
    got = hooked_relevance(rule(), layer, x, relevance)
    torch.testing.assert_close(got, expected, **TOL)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("kind", list(LAYERS))
def test_zbox_matches_reference(kind, bias):
    layer, in_shape = make_layer(kind, bias)
    x = inputs(in_shape, "mixed")
    low = -torch.rand(1, *in_shape, dtype=torch.float64) - 1.0  # batch axis cut/broadcast
    high = torch.rand(1, *in_shape, dtype=torch.float64) + 1.0
    relevance = torch.randn(layer(x).shape, dtype=torch.float64)
    got = hooked_relevance(ZBox(low, high), layer, x, relevance)
    expected = ref.per_sample(
        layer,
        x,
        relevance,
        lambda lay, shape, xi, ri: ref.zbox(lay, shape, xi, ri, low.reshape(-1), high.reshape(-1)),
    )
    torch.testing.assert_close(got, expected, **TOL)
    # scalar bounds equal constant tensors
    scalar = hooked_relevance(ZBox(-2.0, 3.0), layer, x, relevance)
    tensor = hooked_relevance(
        ZBox(torch.full(in_shape, -2.0).double(), torch.full(in_shape, 3.0).double()),
        layer,
        x,
        relevance,
    )
    torch.testing.assert_close(scalar, tensor, **TOL)


def test_norm_on_average_pool():
    """Norm on any module: R_in = x ⊙ Jᵀ(R / stab(f(x))) with J of the pooling."""
    layer = torch.nn.AvgPool2d(2)
    x = inputs((2, 4, 4), "mixed")
    relevance = torch.randn(2, 2, 2, 2, dtype=torch.float64)
    expected = ref.per_sample(layer, x, relevance, ref.epsilon)
    torch.testing.assert_close(hooked_relevance(Norm(), layer, x, relevance), expected, **TOL)


def test_stabilizer_settings_reach_the_rule():
    """Epsilon(Stabilizer(ε)) equals Epsilon(ε); a custom callable stabilizer is used as given."""
    layer, in_shape = make_layer("linear", True)
    x = inputs(in_shape, "mixed")
    relevance = torch.randn(2, 4, dtype=torch.float64)
    a = hooked_relevance(Epsilon(Stabilizer(0.3)), layer, x, relevance)
    b = hooked_relevance(Epsilon(0.3), layer, x, relevance)
    torch.testing.assert_close(a, b, **TOL)
    c = hooked_relevance(ZPlus(stabilizer=lambda z: z + 1.0), layer, x.abs(), relevance)
    jp, bp = ref.affine(layer, in_shape, ref.plus)
    expected = torch.stack(
        [
            xi * (jp.T @ (ri / (jp @ xi + bp + 1.0)))
            for xi, ri in zip(x.abs(), relevance, strict=False)
        ]
    )
    torch.testing.assert_close(c, expected, **TOL)


def test_zero_params_zeroes_the_bias():
    """Epsilon(zero_params='bias') on a layer equals Epsilon on the same layer without bias."""
    layer, in_shape = make_layer("conv2d", True)
    no_bias = ref.modified(layer, ref.no_bias(None))
    x = inputs(in_shape, "mixed")
    relevance = torch.randn(layer(x).shape, dtype=torch.float64)
    got = hooked_relevance(Epsilon(zero_params="bias"), layer, x, relevance)
    torch.testing.assert_close(got, hooked_relevance(Epsilon(), no_bias, x, relevance), **TOL)
    torch.testing.assert_close(got, ref.per_sample(no_bias, x, relevance, ref.epsilon), **TOL)


@pytest.mark.parametrize("rule_class", [Gamma, GenericGamma], ids=["shortcut", "generic"])
@pytest.mark.parametrize("kind", ["linear", "conv2d"])
def test_gamma_zero_params_bias(kind: str, rule_class: type):
    """Gamma(zero_params='bias'): the pairs z_p, z_n lose the bias, the sign of z = Jx + b that
    chooses between them keeps it (the reference library's behaviour); both code paths agree."""
    layer, in_shape = make_layer(kind, True)
    with torch.no_grad():
        layer.bias.mul_(50.0)  # large enough to flip the sign of z for some outputs
    x = inputs(in_shape, "mixed")
    relevance = torch.randn(layer(x).shape, dtype=torch.float64)
    g = 0.5

    def reference(layer, in_shape, x, r):
        jac, b = ref.affine(layer, in_shape)
        ju, _ = ref.affine(layer, in_shape, lambda n, p: p + g * p.clamp(min=0))
        jd, _ = ref.affine(layer, in_shape, lambda n, p: p + g * p.clamp(max=0))
        xp, xn = x.clamp(min=0), x.clamp(max=0)
        z = jac @ x + b
        cp = r * (z > 0) / ref.stab(ju @ xp + jd @ xn)
        cn = r * (z < 0) / ref.stab(jd @ xp + ju @ xn)
        return xp * (ju.T @ cp + jd.T @ cn) + xn * (jd.T @ cp + ju.T @ cn)

    got = hooked_relevance(rule_class(g, zero_params="bias"), layer, x, relevance)
    torch.testing.assert_close(got, ref.per_sample(layer, x, relevance, reference), **TOL)


def test_flat_without_parameters():
    """Flat on a parameter-free module: R_in = Jᵀ(R / stab(f(1))) with J of the module."""
    layer = torch.nn.AvgPool1d(2)
    x = inputs((2, 4), "mixed")
    relevance = torch.randn(2, 2, 2, dtype=torch.float64)
    expected = ref.per_sample(layer, x, relevance, ref.flat)
    torch.testing.assert_close(hooked_relevance(Flat(), layer, x, relevance), expected, **TOL)


def test_gradient_rules_on_relu():
    """Pass: R; DeconvNet: max(R, 0); GuidedBackprop: ∂relu/∂x ⊙ R ⊙ [R > 0];
    BetaSmooth: sigmoid(β x) ⊙ R."""
    x = inputs((6,), "mixed")
    relevance = torch.randn(2, 6, dtype=torch.float64)
    relu = torch.nn.ReLU()
    expected = {
        Pass(): relevance,
        ReLUDeconvNet(): relevance.clamp(min=0),
        ReLUGuidedBackprop(): (x > 0) * relevance * (relevance > 0),
        ReLUBetaSmooth(3.0): torch.sigmoid(3.0 * x) * relevance,
    }
    for rule, want in expected.items():
        torch.testing.assert_close(hooked_relevance(rule, relu, x, relevance), want, **TOL)


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: Epsilon(-1.0), "epsilon"),
        (lambda: Epsilon("a"), "epsilon"),
        (lambda: ZPlus(stabilizer=-1e-3), "stabilizer"),
        (lambda: AlphaBeta(2.0, 0.5), "alpha - beta"),
        (lambda: AlphaBeta(-1.0, -2.0), "alpha"),
        (lambda: AlphaBeta(2.0, -1.0), "beta"),
        (lambda: Gamma(-0.1), "gamma"),
        (lambda: Gamma(float("nan")), "gamma"),
        (lambda: ZBox(1.0, -1.0), "low"),
        (lambda: ZBox(torch.zeros(3), torch.tensor([1.0, -1.0, 1.0])), "low"),
        (lambda: ZBox("a", 1.0), "low"),
        (lambda: Flat(stabilizer=-1.0), "stabilizer"),
        (lambda: WSquare(zero_params=3), "zero_params"),
        (lambda: Norm(stabilizer=None), "stabilizer"),
        (lambda: ReLUBetaSmooth(0.0), "beta_smooth"),
        (lambda: ReLUBetaSmooth(-2.0), "beta_smooth"),
        (lambda: Stabilizer(epsilon=-1.0), "epsilon"),
        (lambda: Stabilizer(dim="x"), "dim"),
    ],
)
def test_bad_parameters_raise_value_error_naming_them(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize(
    "rule",
    [
        Epsilon(0.1, zero_params="bias"),
        Norm(0.2),
        ZPlus(0.01),
        AlphaBeta(3.0, 2.0),
        Gamma(0.5, zero_params=["bias"]),
        ZBox(-1.0, torch.ones(3)),
        Flat(),
        WSquare(),
        Pass(),
        ReLUDeconvNet(),
        ReLUGuidedBackprop(),
        ReLUBetaSmooth(5.0),
    ],
    ids=lambda r: type(r).__name__,
)
def test_hyperparameters_recreate_an_equal_rule(rule):
    again = type(rule)(**rule.hyperparameters())
    assert again == rule
    copied = rule.copy()
    assert copied == rule and copied is not rule
    assert all(getattr(rule, k) is v for k, v in rule.hyperparameters().items())


def _tiny_chunks(module, budget):
    """Slices of two output channels, to exercise the sliced path on small layers."""
    n_out = module.weight.shape[1 if getattr(module, "transposed", False) else 0]
    return [(start, min(start + 2, n_out)) for start in range(0, n_out, 2)]


@pytest.mark.parametrize("kind", ["linear", "conv2d", "convT1d"])
@pytest.mark.parametrize(
    "name,rule,reference",
    [c for c in CASES if c[0] in ("zplus", "alphabeta", "gamma", "gamma-generic")],
    ids=lambda c: c if isinstance(c, str) else "",
)
def test_output_channel_slices_give_the_same_relevance(monkeypatch, name, rule, reference, kind):
    """Processing large layers in slices of output channels is exact (forced here on small ones)."""
    import lrp_core._engine.gamma
    import lrp_core._engine.relevance

    used = []

    def chunks(module, budget):
        used.append(module)
        return _tiny_chunks(module, budget)

    monkeypatch.setattr(lrp_core._engine.relevance, "output_chunks", chunks)
    monkeypatch.setattr(lrp_core._engine.gamma, "output_chunks", chunks)
    layer, in_shape = make_layer(kind, True)
    x = inputs(in_shape, "mixed")
    relevance = torch.randn(layer(x).shape, dtype=torch.float64)
    expected = ref.per_sample(layer, x, relevance, reference)
    torch.testing.assert_close(hooked_relevance(rule(), layer, x, relevance), expected, **TOL)
    # generic Gamma reuses the forward's graph for its z = f(x; θ) term when the output is not
    # larger than the input; the sliced path is for rules that re-run every term
    reused_forward_graph = name == "gamma-generic" and relevance.numel() <= x.numel()
    assert used == ([] if reused_forward_graph else [layer])


@pytest.mark.parametrize("rule", [ZPlus(), AlphaBeta(), Gamma()], ids=lambda r: type(r).__name__)
def test_multi_term_rules_on_a_module_whose_backward_passes_its_vector_on(rule):
    """Regression: on Flatten, a VJP returns its vector itself, and the terms share that vector.
    With z = x⁺ + x⁻ = x (Flatten has no parameters, so θ⁺ = θ⁻ = θ), every rule here gives
    R_in = x⁺ ⊙ R/stab(x) + x⁻ ⊙ R/stab(x) = x ⊙ R / stab(x) (AlphaBeta: z_n = x as well and
    α − β = 1; Gamma: both pairs sum to x, and each passes R where z has its sign)."""
    layer = torch.nn.Flatten()
    x = inputs((2, 3), "mixed")
    relevance = torch.randn(2, 6, dtype=torch.float64)
    expected = x * (relevance / ref.stab(x.flatten(1))).reshape(x.shape)
    torch.testing.assert_close(hooked_relevance(rule, layer, x, relevance), expected, **TOL)


@pytest.mark.parametrize("make", [ClampMod, lambda: GammaMod(0.5)], ids=["ClampMod", "GammaMod"])
def test_clamp_and_gamma_mod_need_a_bound(make):
    """clamp(θ, None, None) is undefined: the constructor says so, naming min and max."""
    with pytest.raises(ValueError, match=r"min or max \(got min=None and max=None\)"):
        make()


def test_clamp_and_gamma_mod_with_one_bound():
    """ClampMod(min=0): θ⁺; ClampMod(max=0): θ⁻; GammaMod(γ, min=0): θ + γθ⁺."""
    theta = torch.tensor([-2.0, -0.5, 0.0, 1.5], dtype=torch.float64)
    torch.testing.assert_close(ClampMod(min=0.0).modifier(theta, "weight"), theta.clamp(min=0))
    torch.testing.assert_close(ClampMod(max=0.0).modifier(theta, "weight"), theta.clamp(max=0))
    expected = theta + 0.5 * theta.clamp(min=0)
    torch.testing.assert_close(GammaMod(0.5, min=0.0).modifier(theta, "weight"), expected)
