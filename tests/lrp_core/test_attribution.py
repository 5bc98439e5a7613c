"""Tests for lrp_core.attribution against hand-written references.

Formulas checked (v = seed, J = Jacobian of the model output w.r.t. the input):
- Gradient:  R = Jᵀ v, with v the attr_output tensor, attr_output(y), or y itself (None).
- SmoothGrad: σ_n = noise_level · (max − min) of sample n; R = 1/T Σ_k Jᵀ(x + σ ε_k) v with
  ε_k ~ N(0, 1) for k < T and ε_T = 0.
- IntegratedGradients: R = (x − b) ⊙ 1/T Σ_{k=1..T} Jᵀ(b + k/T (x − b)) v.
- Occlusion: R = Σ_positions mask ⊙ score_n(occlusion_fn(x, mask)), score_n = Σ seeded output
  of sample n; windows/strides as stated in the Occlusion docstring.
- With a composite, each rule's relevance follows its formula (Epsilon, ZPlus) in matrix form.
"""

import itertools
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from lrp_core.attribution import (
    Gradient,
    IntegratedGradients,
    Occlusion,
    SmoothGrad,
    occlude_independent,
    occlude_outside,
    occlude_window,
)

# ------------------------------------------------------------------------------------------
# models and independent references


def tanh_net(seed=0):
    """f(x) = W2 tanh(W1 x + b1) + b2 with 6 inputs and 3 outputs, float64."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3)).double().eval()


def tanh_net_vjp(net, x, v):
    """Jᵀv of tanh_net written out: W1ᵀ((1 − tanh²(W1 x + b1)) ⊙ W2ᵀ v)."""
    first, _, second = net
    hidden = x @ first.weight.T + first.bias
    return ((1 - torch.tanh(hidden) ** 2) * (v @ second.weight)) @ first.weight


class Cube(nn.Module):
    """y = x³ elementwise: Jᵀ1 = 3x², and d/dx Σ 3x² = 6x."""

    def forward(self, x):
        return x**3


class HalfSquare(nn.Module):
    """y_n = ½ Σ x_n²: the gradient with seed 1 is x itself."""

    def forward(self, x):
        return 0.5 * (x**2).flatten(1).sum(1, keepdim=True)


def conv_net(seed=0):
    """Conv2d(2→3, 3×3, pad 1) → Tanh → Flatten → Linear(60→4) for (N, 2, 5, 4) inputs."""
    torch.manual_seed(seed)
    return (
        nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(60, 4))
        .double()
        .eval()
    )


def assert_no_hooks(model):
    for module in model.modules():
        for name in (
            "_forward_hooks",
            "_forward_pre_hooks",
            "_backward_hooks",
            "_backward_pre_hooks",
        ):
            assert not getattr(module, name), f"{name} left on {module}"


class CountingComposite:
    """A stand-in composite that counts register/remove and installs a real forward hook."""

    def __init__(self):
        self.registered = self.removed = 0
        self.handles = []

    def register(self, module):
        self.registered += 1
        self.handles.append(module.register_forward_hook(lambda *args: None))

    def remove(self):
        self.removed += 1
        for handle in self.handles:
            handle.remove()
        self.handles = []


@pytest.fixture
def x():
    return torch.randn(2, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))


ONE_HOT = torch.eye(3, dtype=torch.float64)[[0, 2]]

# ------------------------------------------------------------------------------------------
# Gradient


def test_gradient_with_one_hot_seed(x):
    net = tanh_net()
    output, relevance = Gradient(net, attr_output=ONE_HOT)(x)
    torch.testing.assert_close(relevance, tanh_net_vjp(net, x, ONE_HOT))
    torch.testing.assert_close(output, net(x).detach())
    assert not output.requires_grad and not relevance.requires_grad


def test_gradient_with_callable_and_none_seed(x):
    net = tanh_net()
    y = net(x).detach()
    _, relevance = Gradient(net, attr_output=lambda out: out * ONE_HOT)(x)
    torch.testing.assert_close(relevance, tanh_net_vjp(net, x, y * ONE_HOT))
    _, relevance = Gradient(net)(x)  # None: the seed is the output itself
    torch.testing.assert_close(relevance, tanh_net_vjp(net, x, y))


def test_call_time_seed_beats_construction_seed(x):
    net = tanh_net()
    attributor = Gradient(net, attr_output=ONE_HOT)
    other = torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64)  # broadcast over the batch
    _, relevance = attributor(x, attr_output=other)
    torch.testing.assert_close(relevance, tanh_net_vjp(net, x, other.expand(2, 3)))
    _, relevance = attributor(x)
    torch.testing.assert_close(relevance, tanh_net_vjp(net, x, ONE_HOT))


def test_create_graph_gives_second_order_gradients(x):
    x = x.clone().requires_grad_(True)
    output, relevance = Gradient(Cube(), attr_output=torch.ones_like(x), create_graph=True)(x)
    torch.testing.assert_close(relevance, 3 * x.detach() ** 2)
    (second,) = torch.autograd.grad(relevance.sum(), x)
    torch.testing.assert_close(second, 6 * x.detach())
    assert output.requires_grad


def test_gradient_of_an_unused_input_is_zero(x):
    class Constant(nn.Module):
        def __init__(self):
            super().__init__()
            self.bias = nn.Parameter(torch.ones(2, 3, dtype=torch.float64))

        def forward(self, inputs):
            return self.bias * 1.0

    _, relevance = Gradient(Constant())(x)
    torch.testing.assert_close(relevance, torch.zeros_like(x))


# ------------------------------------------------------------------------------------------
# SmoothGrad


def test_smoothgrad_equals_hand_written_loop(x):
    net = tanh_net()
    noise_level, n_iter = 0.3, 7
    generator = torch.Generator().manual_seed(5)
    span = x.amax(1, keepdim=True) - x.amin(1, keepdim=True)
    gradients = []
    for _ in range(n_iter - 1):
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype)
        gradients.append(tanh_net_vjp(net, x + noise_level * span * noise, ONE_HOT))
    gradients.append(tanh_net_vjp(net, x, ONE_HOT))
    expected = torch.stack(gradients).mean(0)

    smooth = SmoothGrad(
        net,
        attr_output=ONE_HOT,
        noise_level=noise_level,
        n_iter=n_iter,
        generator=torch.Generator().manual_seed(5),
    )
    output, relevance = smooth(x)
    torch.testing.assert_close(relevance, expected)
    torch.testing.assert_close(output, net(x).detach())


def test_smoothgrad_with_one_iteration_or_no_noise_equals_gradient(x):
    net = tanh_net()
    _, gradient = Gradient(net, attr_output=ONE_HOT)(x)
    torch.testing.assert_close(SmoothGrad(net, attr_output=ONE_HOT, n_iter=1)(x)[1], gradient)
    torch.testing.assert_close(
        SmoothGrad(net, attr_output=ONE_HOT, noise_level=0.0, n_iter=4)(x)[1], gradient
    )


def test_smoothgrad_sigma_is_per_sample_value_range():
    # HalfSquare's gradient is its input, so R − x = σ_n Σ_{k<T} ε_k / T, per sample n
    x = torch.tensor([[0.0, 1.0, 0.5], [-5.0, 5.0, 2.0]], dtype=torch.float64)
    noise_level, n_iter = 0.2, 5
    generator = torch.Generator().manual_seed(3)
    noise_sum = sum(
        torch.randn(x.shape, generator=generator, dtype=x.dtype) for _ in range(n_iter - 1)
    )
    smooth = SmoothGrad(
        HalfSquare(),
        attr_output=torch.ones(2, 1, dtype=torch.float64),
        noise_level=noise_level,
        n_iter=n_iter,
        generator=torch.Generator().manual_seed(3),
    )
    _, relevance = smooth(x)
    sigma = noise_level * (x.numpy().max(1) - x.numpy().min(1))  # [0.2, 2.0]
    np.testing.assert_allclose(
        ((relevance - x) * n_iter / noise_sum).numpy(), np.repeat(sigma[:, None], 3, 1)
    )


# ------------------------------------------------------------------------------------------
# IntegratedGradients


def test_integrated_gradients_equals_riemann_sum(x):
    net = tanh_net()
    n_iter = 6
    baseline = torch.full_like(x, 0.3)
    steps = [baseline + k / n_iter * (x - baseline) for k in range(1, n_iter + 1)]
    mean_gradient = torch.stack([tanh_net_vjp(net, point, ONE_HOT) for point in steps]).mean(0)

    integrated = IntegratedGradients(
        net, attr_output=ONE_HOT, baseline_fn=lambda inp: torch.full_like(inp, 0.3), n_iter=n_iter
    )
    output, relevance = integrated(x)
    torch.testing.assert_close(relevance, (x - baseline) * mean_gradient)
    torch.testing.assert_close(output, net(x).detach())


def test_integrated_gradients_is_exact_on_a_linear_model(x):
    # f(x) = w·x: every gradient is w, so R = (x − b) ⊙ w and Σ R = f(x) − f(b)
    linear = nn.Linear(6, 1, bias=False).double()
    weight = linear.weight.detach()[0]
    baseline = torch.linspace(-1, 1, 6, dtype=torch.float64)
    _, relevance = IntegratedGradients(linear, baseline_fn=lambda inp: baseline, n_iter=9)(
        x, attr_output=torch.ones(2, 1, dtype=torch.float64)
    )
    torch.testing.assert_close(relevance, (x - baseline) * weight, rtol=1e-13, atol=1e-14)
    torch.testing.assert_close(relevance.sum(1), (x @ weight) - baseline @ weight)


# ------------------------------------------------------------------------------------------
# Occlusion


def occlusion_reference(model, x, window, stride, keep_window, seeded):
    """Direct numpy occlusion with explicit per-axis window/stride tuples.

    Offsets along axis d are 0, s_d, 2 s_d, … < size_d; a window at offset o covers the indices
    (o + j) mod size_d, j < w_d: it wraps around at the far edge (as in the reference library,
    whose behaviour is the requirement where the issue is silent).
    ``seeded(out)`` gives the seeded output; its per-sample sum is credited to the window.
    """
    inputs = x.numpy()
    relevance = np.zeros_like(inputs)
    starts = [range(0, size, step) for size, step in zip(inputs.shape, stride, strict=True)]
    for offsets in itertools.product(*starts):
        mask = np.zeros(inputs.shape, dtype=bool)
        covered = [
            (np.arange(o, o + w) % size)
            for o, w, size in zip(offsets, window, inputs.shape, strict=True)
        ]
        mask[np.ix_(*covered)] = True
        occluded = np.where(mask, inputs, 0.0) if keep_window else np.where(mask, 0.0, inputs)
        with torch.no_grad():
            out = model(torch.from_numpy(occluded)).numpy()
        score = seeded(out).reshape(len(out), -1).sum(1)
        relevance += mask * score.reshape((-1,) + (1,) * (inputs.ndim - 1))
    return relevance


OCCLUSION_CASES = [
    # (window, stride, resolved window, resolved stride) for inputs of shape (2, 2, 5, 4)
    (2, 2, (2, 2, 2, 2), (2, 2, 2, 2)),
    (8, 8, (2, 2, 5, 4), (2, 2, 5, 4)),  # window larger than every axis
    (3, 2, (2, 2, 3, 3), (2, 2, 2, 2)),  # windows wrap around at the far edge
    ((3, 2), (1,), (2, 2, 3, 2), (2, 2, 3, 1)),  # completed from the left
    ((1, 2, 2), (1, 1, 2), (2, 1, 2, 2), (2, 1, 1, 2)),
    ((1, 1, 2, 2), (1, 1, 3, 2), (1, 1, 2, 2), (1, 1, 3, 2)),  # per-sample windows
    ((2,), 8, (2, 2, 5, 2), (2, 2, 5, 4)),  # int stride: min(8, size), batch from the window
]


@pytest.mark.parametrize(
    ("window", "stride", "resolved_window", "resolved_stride"), OCCLUSION_CASES
)
def test_occlusion_matches_numpy_reference(window, stride, resolved_window, resolved_stride):
    net = conv_net()
    x = torch.randn(2, 2, 5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    one_hot = torch.eye(4, dtype=torch.float64)[[1, 3]]
    occlusion = Occlusion(net, attr_output=one_hot, window=window, stride=stride)
    assert occlusion.resolve(x.shape) == (resolved_window, resolved_stride)
    output, relevance = occlusion(x)
    expected = occlusion_reference(
        net, x, resolved_window, resolved_stride, True, lambda out: out * one_hot.numpy()
    )
    np.testing.assert_allclose(relevance.numpy(), expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(output, net(x).detach())


@pytest.mark.parametrize(
    ("attr_output", "seeded"),
    [
        (None, lambda out: out),
        (lambda out: out[:, 1:2] ** 2, lambda out: out[:, 1:2] ** 2),
    ],
)
def test_classic_occlusion_with_callable_and_none_seeds(attr_output, seeded):
    net = conv_net()
    x = torch.randn(2, 2, 5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    occlusion = Occlusion(net, occlusion_fn=occlude_window, window=(2, 2), stride=(1, 2))
    _, relevance = occlusion(x, attr_output=attr_output)
    expected = occlusion_reference(net, x, (2, 2, 2, 2), (2, 2, 1, 2), False, seeded)
    np.testing.assert_allclose(relevance.numpy(), expected, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------------------
# batching


def test_batched_passes_equal_unbatched(x):
    net = tanh_net()

    def smooth(batch_size):
        generator = torch.Generator().manual_seed(9)
        attributor = SmoothGrad(
            net,
            attr_output=lambda out: out * ONE_HOT,
            n_iter=7,
            batch_size=batch_size,
            generator=generator,
        )
        return attributor(x)

    def integrated(batch_size):
        return IntegratedGradients(net, attr_output=ONE_HOT, n_iter=7, batch_size=batch_size)(x)

    cnet = conv_net()
    image = torch.randn(2, 2, 5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))

    def occlusion(batch_size):
        return Occlusion(cnet, window=2, stride=1, batch_size=batch_size)(image)

    for method in (smooth, integrated, occlusion):
        reference_output, reference = method(1)
        for batch_size in (3, 7, None):
            output, relevance = method(batch_size)
            torch.testing.assert_close(relevance, reference, rtol=1e-12, atol=1e-14)
            torch.testing.assert_close(output, reference_output, rtol=1e-12, atol=1e-14)


# ------------------------------------------------------------------------------------------
# composite registration


def test_context_manager_registers_once_and_removes_on_exit(x):
    net, composite = tanh_net(), CountingComposite()
    attributor = SmoothGrad(net, composite=composite, attr_output=ONE_HOT, n_iter=3)
    with attributor:
        for _ in range(3):
            attributor(x)
        assert (composite.registered, composite.removed) == (1, 0)
    assert (composite.registered, composite.removed) == (1, 1)
    assert_no_hooks(net)
    attributor(x)
    attributor(x)  # without `with`: each call registers and removes
    assert (composite.registered, composite.removed) == (3, 3)


def test_hooks_are_removed_when_the_forward_raises():
    net, composite = tanh_net(), CountingComposite()
    attributor = Gradient(net, composite=composite)
    wrong = torch.zeros(2, 4, dtype=torch.float64)  # the first layer expects 6 features
    with pytest.raises(RuntimeError):
        with attributor:
            attributor(wrong)
    with pytest.raises(RuntimeError):
        attributor(wrong)
    assert composite.registered == composite.removed == 2
    assert_no_hooks(net)


def test_composite_registered_elsewhere_is_left_alone(x):
    net, composite = tanh_net(), CountingComposite()
    composite.register(net)
    Gradient(net, composite=composite)(x)
    assert (composite.registered, composite.removed) == (1, 0)
    composite.remove()


# ------------------------------------------------------------------------------------------
# bad arguments


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda net: SmoothGrad(net, n_iter=0), "n_iter"),
        (lambda net: SmoothGrad(net, n_iter=2.5), "n_iter"),
        (lambda net: IntegratedGradients(net, n_iter=-1), "n_iter"),
        (lambda net: SmoothGrad(net, noise_level=-0.1), "noise_level"),
        (lambda net: SmoothGrad(net, noise_level=float("nan")), "noise_level"),
        (lambda net: Occlusion(net, window=0), "window"),
        (lambda net: Occlusion(net, window=(2, 0)), "window"),
        (lambda net: Occlusion(net, window="a"), "window"),
        (lambda net: Occlusion(net, stride=-2), "stride"),
        (lambda net: Occlusion(net, batch_size=0), "batch_size"),
    ],
)
def test_bad_constructor_arguments_raise_value_error(make, match):
    with pytest.raises(ValueError, match=match):
        make(tanh_net())


@pytest.mark.parametrize(
    ("make", "call_input", "error", "match"),
    [
        (lambda net: Gradient(net), torch.zeros(2, 6, dtype=torch.long), TypeError, "input"),
        (lambda net: Gradient(net), [[0.0] * 6], TypeError, "input"),
        (lambda net: Gradient(net), torch.full((2, 6), float("nan")), ValueError, "NaN"),
        (lambda net: Gradient(net, attr_output=torch.ones(2, 4)), None, ValueError, "attr_output"),
        (lambda net: Gradient(net, attr_output="x"), None, TypeError, "attr_output"),
        (lambda net: Occlusion(net, window=(1, 1, 1)), None, ValueError, "window"),
        (
            lambda net: IntegratedGradients(net, baseline_fn=lambda inp: torch.zeros(3)),
            None,
            ValueError,
            "baseline_fn",
        ),
        (
            lambda net: Occlusion(net, occlusion_fn=lambda inp, mask: inp[:1]),
            None,
            ValueError,
            "occlusion_fn",
        ),
    ],
)
def test_bad_call_arguments_leave_model_and_hooks_unchanged(make, call_input, error, match, x):
    net, composite = tanh_net(), CountingComposite()
    state = {key: value.clone() for key, value in net.state_dict().items()}
    with pytest.raises(error, match=match):
        attributor = make(net)
        attributor.composite = composite
        attributor(x.double() if call_input is None else call_input)
    assert composite.registered == composite.removed
    assert_no_hooks(net)
    for key, value in net.state_dict().items():
        assert torch.equal(value, state[key])


def test_model_returning_a_tuple_is_a_type_error(x):
    class Pair(nn.Module):
        def forward(self, inputs):
            return inputs, inputs

    with pytest.raises(TypeError, match="one tensor"):
        Gradient(Pair())(x)


# ------------------------------------------------------------------------------------------
# real composites


def stabilize(z, epsilon):
    """z + ε·sign(z) with sign(0) = +1."""
    return z + epsilon * torch.where(z >= 0, 1.0, -1.0).to(z)


def test_hand_made_epsilon_composite_matches_layerwise_formula(x):
    from lrp_core.core import Composite
    from lrp_core.rules import Epsilon

    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)).double().eval()
    epsilon = 0.25
    composite = Composite(
        module_map=lambda ctx, name, module: (
            Epsilon(epsilon=epsilon) if isinstance(module, nn.Linear) else None
        )
    )
    _, relevance = Gradient(net, composite=composite, attr_output=ONE_HOT)(x)

    # Epsilon: R_in = x ⊙ Wᵀ(R / stab(Wx + b, ε)); the ReLU keeps its gradient, which passes
    # R where the activation is positive (elsewhere R is already zero since a = 0).
    first, relu, second = net
    hidden = first(x).detach()
    active = relu(hidden)
    relevance_active = active * (
        (ONE_HOT / stabilize(second(active).detach(), epsilon)) @ second.weight
    )
    relevance_hidden = relevance_active * (hidden > 0)
    expected = x * ((relevance_hidden / stabilize(hidden, epsilon)) @ first.weight)
    torch.testing.assert_close(relevance, expected.detach())
    assert_no_hooks(net)


def dense_matrix(function, shape):
    """The Jacobian of a linear ``function`` as a matrix, by applying it to basis vectors."""
    basis = torch.eye(int(np.prod(shape)), dtype=torch.float64).reshape((-1,) + tuple(shape))
    with torch.no_grad():
        return torch.stack([function(e[None]).flatten() for e in basis], dim=1)


def test_epsilon_plus_composite_matches_matrix_reference():
    from lrp_core.composites import EpsilonPlus

    torch.manual_seed(4)
    conv = nn.Conv2d(2, 3, 3, padding=1).double()
    dense = nn.Linear(3 * 4 * 4, 2).double()
    net = nn.Sequential(conv, nn.ReLU(), nn.Flatten(), dense).eval()
    x = torch.randn(2, 2, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    seed = torch.eye(2, dtype=torch.float64)[[0, 1]]

    class Counting(EpsilonPlus):
        registrations = 0

        def register(self, module):
            self.registrations += 1
            super().register(module)

    composite = Counting()
    attributor = Gradient(net, composite=composite, attr_output=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Flatten falls back to its plain gradient
        with attributor:
            _, relevance = attributor(x)
            _, again = attributor(x)
    assert composite.registrations == 1
    assert_no_hooks(net)
    torch.testing.assert_close(again, relevance)

    # Linear → Epsilon(1e-6): R_a = a ⊙ Wᵀ(v / stab(z)); ReLU → Pass.
    # Conv → ZPlus: z = conv(x⁺; W⁺, b⁺) + conv(x⁻; W⁻, no bias), c = R / stab(z),
    # R_x = x⁺ ⊙ M⁺ᵀc + x⁻ ⊙ M⁻ᵀc with M± the matrices of conv(·; W±, no bias).
    weight, bias = conv.weight.detach(), conv.bias.detach()
    pos_matrix = dense_matrix(
        lambda e: nn.functional.conv2d(e, weight.clamp(min=0), padding=1), (2, 4, 4)
    )
    neg_matrix = dense_matrix(
        lambda e: nn.functional.conv2d(e, weight.clamp(max=0), padding=1), (2, 4, 4)
    )
    pos_bias = bias.clamp(min=0).repeat_interleave(16)
    for n in range(2):
        active = torch.relu(conv(x[n : n + 1])).detach().flatten()
        z_dense = dense(active).detach()
        relevance_active = active * ((seed[n] / stabilize(z_dense, 1e-6)) @ dense.weight.detach())
        x_pos, x_neg = x[n].flatten().clamp(min=0), x[n].flatten().clamp(max=0)
        z = pos_matrix @ x_pos + pos_bias + neg_matrix @ x_neg
        c = relevance_active / stabilize(z, 1e-6)
        expected = x_pos * (pos_matrix.T @ c) + x_neg * (neg_matrix.T @ c)
        torch.testing.assert_close(relevance[n].flatten(), expected)


def test_integrated_gradients_with_composite_is_batch_invariant():
    from lrp_core.composites import EpsilonPlus

    net = conv_net()
    x = torch.randn(2, 2, 5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    results = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for batch_size in (1, 4):
            attributor = IntegratedGradients(
                net, composite=EpsilonPlus(), n_iter=4, batch_size=batch_size
            )
            results.append(attributor(x)[1])
    torch.testing.assert_close(results[1], results[0], rtol=1e-12, atol=1e-14)
    assert_no_hooks(net)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_attributors_run_on_cuda_with_a_cpu_generator():
    # same numbers on the GPU as on the CPU (noise drawn on the CPU generator, then moved)
    net = conv_net()
    x = torch.randn(2, 2, 5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    gpu_net = conv_net().cuda()
    for make in (
        lambda model: SmoothGrad(model, n_iter=3, generator=torch.Generator().manual_seed(1)),
        lambda model: IntegratedGradients(model, n_iter=3),
        lambda model: Occlusion(model, window=2, stride=2),
    ):
        _, expected = make(net)(x)
        _, relevance = make(gpu_net)(x.cuda())
        assert relevance.device.type == "cuda"
        torch.testing.assert_close(relevance.cpu(), expected)


def test_real_composite_registered_by_its_own_context_is_reused(x):
    from lrp_core.composites import EpsilonPlus

    net = tanh_net()
    composite = EpsilonPlus()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Tanh is matched; nothing should fall back, but be safe
        _, expected = Gradient(net, composite=composite, attr_output=ONE_HOT)(x)
        with composite.context(net):
            _, relevance = Gradient(net, composite=composite, attr_output=ONE_HOT)(x)
            assert composite.handles, "the attributor must not remove the context's hooks"
    torch.testing.assert_close(relevance, expected)
    _, plain = Gradient(net, attr_output=ONE_HOT)(x)
    assert not torch.allclose(expected, plain)  # the composite did change the relevance
    assert_no_hooks(net)


def test_occlude_independent_keeps_or_fills_the_window():
    """occlude_independent(x, m, fill_fn, invert) = where(m, x, fill_fn(x)), or with invert
    where(m, fill_fn(x), x) (the reference library's signature); occlude_outside and
    occlude_window are its zero-filled forms."""
    x = torch.arange(1.0, 9.0).reshape(1, 2, 4)
    mask = torch.zeros_like(x, dtype=torch.bool)
    mask[..., 2:] = True
    zeros = torch.zeros_like(x)
    minus = torch.full_like(x, -1.0)
    torch.testing.assert_close(occlude_independent(x, mask), torch.where(mask, x, zeros))
    torch.testing.assert_close(
        occlude_independent(x, mask, invert=True), torch.where(mask, zeros, x)
    )
    filled = occlude_independent(x, mask, fill_fn=lambda t: torch.full_like(t, -1.0))
    torch.testing.assert_close(filled, torch.where(mask, x, minus))
    torch.testing.assert_close(occlude_outside(x, mask), occlude_independent(x, mask))
    torch.testing.assert_close(occlude_window(x, mask), occlude_independent(x, mask, invert=True))


@pytest.mark.parametrize("name", ["SmoothGrad", "IntegratedGradients"])
def test_batched_attributors_create_graph_for_second_order_gradients(x, name):
    """With create_graph=True (reference-library position: after attr_output) the attribution
    keeps its graph. Reference: with noise_level=0 / n_iter=1 both reduce to closed forms of the
    explicit VJP, SmoothGrad R = Jᵀv and IG R = x ⊙ Jᵀv; ∂/∂x Σ R² is taken through those."""
    net = tanh_net()
    x = x.clone().requires_grad_()
    if name == "SmoothGrad":
        attributor = SmoothGrad(net, None, ONE_HOT, True, None, 0.0, 1)
        expected = tanh_net_vjp(net, x, ONE_HOT)
    else:
        attributor = IntegratedGradients(net, None, ONE_HOT, True, None, None, 1)
        expected = x * tanh_net_vjp(net, x, ONE_HOT)
    _, relevance = attributor(x)
    torch.testing.assert_close(relevance, expected, rtol=1e-12, atol=1e-12)
    (second,) = torch.autograd.grad(relevance.pow(2).sum(), x)
    (reference,) = torch.autograd.grad(expected.pow(2).sum(), x)
    torch.testing.assert_close(second, reference, rtol=1e-12, atol=1e-12)
    assert second.abs().sum() > 0
