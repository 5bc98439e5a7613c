"""The hook mechanism: true gradients, call records, several inputs/outputs, clean-up, ParamMod."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lrp_core.core import (
    BasicHook,
    Composite,
    Hook,
    MissingParameterError,
    ParamMod,
    RemovableHandle,
    RemovableHandleList,
    Stabilizer,
    collect_leaves,
    expand,
    stabilize,
)
from lrp_core.rules import Epsilon, Gamma, Norm, Pass, ZPlus

from . import references as ref

TOL = dict(rtol=1e-10, atol=1e-10)


def relevance_of(model, x, seed, *, create_graph=False):
    x = x.clone().requires_grad_()
    out = model(x)
    (grad,) = torch.autograd.grad(out, x, seed, create_graph=create_graph)
    return x, grad


def hooked(model, rules):
    """Register ``rules[name]`` on each named module; returns the handles."""
    handles = RemovableHandleList()
    modules = dict(model.named_modules())
    for name, rule in rules.items():
        handles.append(rule.copy().register(modules[name]))
    return handles


class Recorder(Hook):
    """Generic hook that records what its backward receives and keeps the true gradient."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def backward(self, module, grad_input, grad_output):
        self.seen.append((grad_input, grad_output))

    def copy(self):
        return Recorder()


def test_generic_hook_receives_true_gradients():
    """grad_input = Jᵀ grad_output of the module; grad_output is what arrives at its output."""
    torch.manual_seed(0)
    layer = nn.Linear(4, 3).double()
    x = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    seed = torch.randn(2, 3, dtype=torch.float64)
    hook = Recorder()
    handles = hook.register(layer)
    (grad,) = torch.autograd.grad(layer(x), x, seed)
    handles.remove()
    ((grad_input, grad_output),) = hook.seen
    torch.testing.assert_close(grad_output[0], seed, **TOL)
    torch.testing.assert_close(grad_input[0], seed @ layer.weight, **TOL)
    torch.testing.assert_close(grad, grad_input[0], **TOL)
    assert hook.stored_tensors == {}


class _CountingLinear(nn.Linear):
    """Bias-free linear layer whose backward counts its calls (to see which VJPs a hook runs)."""

    calls = 0

    class _Fn(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, weight):
            ctx.save_for_backward(weight)
            return x @ weight.T

        @staticmethod
        def backward(ctx, grad):
            _CountingLinear.calls += 1
            (weight,) = ctx.saved_tensors
            return grad @ weight, None

    def __init__(self):
        super().__init__(4, 3, bias=False, dtype=torch.float64)

    def forward(self, x):
        return self._Fn.apply(x, self.weight)


@pytest.mark.parametrize(
    "hook,x,expected_calls",
    [
        (Recorder(), [1.0, -2.0, 3.0, -0.5], 1),
        (Epsilon(), [1.0, -2.0, 3.0, -0.5], 1),
        (ZPlus(), [1.0, -2.0, 3.0, -0.5], 2),
        (ZPlus(), [1.0, 0.0, 3.0, 0.5], 1),
        (Gamma(), [1.0, 0.0, 3.0, 0.5], 2),
        (BasicHook(input_modifiers=[lambda x: x]), [1.0, -2.0, 3.0, -0.5], 1),
    ],
    ids=[
        "generic",
        "epsilon-reuses-graph",
        "zplus-two-terms",
        "zplus-x-minus-skipped",
        "gamma-x-minus-skipped",
        "basic-rerun",
    ],
)
def test_basic_hooks_never_compute_the_discarded_true_gradient(hook, x, expected_calls):
    """A generic hook needs one VJP (the true gradient); BasicHook one per term that does not
    vanish: x⁻ terms of a bias-free linear map vanish for x ≥ 0; Gamma runs one VJP for the
    z > 0 part and one for the z < 0 part (the seed is all ones and z has both signs)."""
    module = _CountingLinear()
    with torch.no_grad():
        module.weight.copy_(
            torch.tensor(
                [[1.0, 2.0, -1.0, 0.5], [-1.0, -1.0, -2.0, 1.0], [0.3, -0.2, 0.1, 0.4]],
                dtype=torch.float64,
            )
        )
    x = torch.tensor([x], dtype=torch.float64, requires_grad=True)
    handles = hook.register(module)
    _CountingLinear.calls = 0
    torch.autograd.grad(module(x), x, torch.ones(1, 3, dtype=torch.float64))
    handles.remove()
    assert _CountingLinear.calls == expected_calls


def test_module_used_twice_gets_one_record_per_call():
    """f used twice equals two separate copies of f, for an LRP rule and for a generic hook."""
    torch.manual_seed(1)
    shared = nn.Linear(4, 4).double()

    class Twice(nn.Module):
        def __init__(self, first, second):
            super().__init__()
            self.first, self.second, self.relu = first, second, nn.ReLU()

        def forward(self, x):
            return self.second(self.relu(self.first(x)))

    twice = Twice(shared, shared)
    split = Twice(shared, ref.modified(shared, None))
    x = torch.randn(3, 4, dtype=torch.float64)
    seed = torch.randn(3, 4, dtype=torch.float64)
    for rule in (Epsilon(), ZPlus(), GradTimesInput()):
        rules = {"first": rule, "relu": Pass()}
        with_twice = hooked(twice, rules)
        _, got = relevance_of(twice, x, seed)
        with_twice.remove()
        with_split = hooked(split, {**rules, "second": rule})
        _, want = relevance_of(split, x, seed)
        with_split.remove()
        torch.testing.assert_close(got, want, **TOL)


class GradTimesInput(Hook):
    """Layer-wise gradient × input, stored per call."""

    def forward(self, module, input, output):
        self.stored_tensors["input"] = input

    def backward(self, module, grad_input, grad_output):
        return (self.stored_tensors["input"][0] * grad_input[0],)


class TwoInputs(nn.Module):
    """f(a, b) = A a + B b (+ bias), optionally with b as keyword."""

    def __init__(self, joint: nn.Linear, split: int):
        super().__init__()
        self.weight, self.bias, self.split = joint.weight, joint.bias, split

    def forward(self, a, b=None):
        weight = self.weight
        return a @ weight[:, : self.split].T + b @ weight[:, self.split :].T + self.bias


@pytest.mark.parametrize("keyword", [False, True])
@pytest.mark.parametrize("rule", [Epsilon(), ZPlus()], ids=["epsilon", "zplus"])
def test_two_tensor_inputs_equal_one_concatenated_input(rule, keyword):
    """Relevance of (a, b) for f(a, b) = [A B][a; b] + c equals the split relevance of [a; b]."""
    torch.manual_seed(2)
    joint = nn.Linear(5, 3).double()
    two = TwoInputs(joint, 2)
    a = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    seed = torch.randn(2, 3, dtype=torch.float64)
    handles = rule.copy().register(two)
    out = two(a, b=b) if keyword else two(a, b)
    got = torch.autograd.grad(out, (a, b), seed)
    handles.remove()
    _, want = relevance_with(rule, joint, torch.cat([a, b], 1).detach(), seed)
    torch.testing.assert_close(torch.cat(got, 1), want, **TOL)


def relevance_with(rule, module, x, seed):
    handles = rule.copy().register(module)
    try:
        return relevance_of(module, x, seed)
    finally:
        handles.remove()


class TwoOutputs(nn.Module):
    """x ↦ (A x + a, B x + b): the rows of one linear layer, returned as a tuple."""

    def __init__(self, joint: nn.Linear, split: int):
        super().__init__()
        self.weight, self.bias, self.split = joint.weight, joint.bias, split

    def forward(self, x):
        out = nn.functional.linear(x, self.weight, self.bias)
        return out[:, : self.split], out[:, self.split :]


@pytest.mark.parametrize(
    "rule", [Epsilon(), ZPlus(), GradTimesInput()], ids=["eps", "zplus", "gxi"]
)
def test_tuple_outputs_equal_one_concatenated_output(rule):
    torch.manual_seed(3)
    joint = nn.Linear(4, 5).double()
    x = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    seed = torch.randn(2, 5, dtype=torch.float64)
    two = TwoOutputs(joint, 2)
    handles = rule.copy().register(two)
    first, second = two(x)
    (got,) = torch.autograd.grad((first, second), x, (seed[:, :2], seed[:, 2:]))
    handles.remove()
    _, want = relevance_with(rule, joint, x.detach(), seed)
    torch.testing.assert_close(got, want, **TOL)


def test_in_place_relu_equals_out_of_place():
    torch.manual_seed(4)

    def net(inplace):
        torch.manual_seed(5)
        return nn.Sequential(nn.Linear(4, 6), nn.ReLU(inplace=inplace), nn.Linear(6, 3)).double()

    x = torch.randn(2, 4, dtype=torch.float64)
    seed = torch.randn(2, 3, dtype=torch.float64)
    rules = {"0": Epsilon(), "1": Pass(), "2": ZPlus()}
    results = []
    for inplace in (False, True):
        model = net(inplace)
        handles = hooked(model, rules)
        x_in, relevance = relevance_of(model, x, seed)
        handles.remove()
        results.append(relevance)
        torch.testing.assert_close(x_in.detach(), x, rtol=0, atol=0)
    torch.testing.assert_close(results[0], results[1], **TOL)


def bias_free_relu_net():
    torch.manual_seed(6)
    return nn.Sequential(
        nn.Linear(5, 7, bias=False), nn.ReLU(), nn.Linear(7, 3, bias=False)
    ).double()


@pytest.mark.parametrize("rule", [Epsilon(0.01), Epsilon(Stabilizer(0.01))], ids=["eps", "stab"])
def test_second_order_gradient_through_create_graph(rule):
    """d/dx Σ R(x) for Epsilon on the linear layers of a bias-free ReLU net (ReLU unhooked),
    against the formula written in torch and differentiated by autograd:
    z₁ = W₁x, a = relu(z₁), z₂ = W₂a, R_a = a ⊙ W₂ᵀ(S/stab z₂), R_x = x ⊙ W₁ᵀ(R_a/stab z₁).
    (The relevance arriving at a ReLU is R_a either way.)"""
    model = bias_free_relu_net()
    w1, w2 = model[0].weight, model[2].weight
    x = torch.randn(2, 5, dtype=torch.float64, requires_grad=True)
    seed = torch.randn(2, 3, dtype=torch.float64)
    handles = hooked(model, {"0": rule, "2": rule})
    (relevance,) = torch.autograd.grad(model(x), x, seed, create_graph=True)
    (second,) = torch.autograd.grad(relevance.sum(), x)
    handles.remove()

    z1 = x @ w1.T
    a = z1.relu()
    z2 = a @ w2.T
    r_a = a * ((seed / ref.stab(z2, 0.01)) @ w2)
    by_hand = x * ((r_a / ref.stab(z1, 0.01)) @ w1)
    torch.testing.assert_close(relevance, by_hand, **TOL)
    (want,) = torch.autograd.grad(by_hand.sum(), x)
    torch.testing.assert_close(second, want, **TOL)


def test_backward_twice_needs_retain_graph():
    model = bias_free_relu_net()
    handles = hooked(model, {"0": ZPlus(), "1": Pass(), "2": Epsilon()})
    x = torch.randn(2, 5, dtype=torch.float64, requires_grad=True)
    out = model(x)
    seed = torch.ones_like(out)
    (first,) = torch.autograd.grad(out, x, seed, retain_graph=True)
    (again,) = torch.autograd.grad(out, x, seed)
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    with pytest.raises(RuntimeError, match="second time|already freed"):
        torch.autograd.grad(out, x, seed)
    handles.remove()


def snapshot(model):
    return {k: (v.data_ptr(), v.clone()) for k, v in model.state_dict().items()}


def assert_untouched(model, before):
    after = model.state_dict()
    assert set(after) == set(before)
    for key, (pointer, value) in before.items():
        assert after[key].data_ptr() == pointer
        assert torch.equal(after[key], value)
    for module in model.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks
        assert not module._backward_hooks


class MapAll(Composite):
    def __init__(self, rules, canonizers=None):
        super().__init__(canonizers=canonizers)
        self.rules = rules

    def module_map(self, ctx, name, module):
        return self.rules.get(type(module))


def test_composite_context_removes_everything_also_on_error():
    model = bias_free_relu_net()
    before = snapshot(model)
    composite = MapAll({nn.Linear: ZPlus(), nn.ReLU: Pass()})
    x = torch.randn(2, 5, dtype=torch.float64, requires_grad=True)
    with composite.context(model):
        hooks = list(composite.hooks)
        relevance_of(model, x, torch.ones(2, 3, dtype=torch.float64))
        assert len(hooks) == 3
    assert_untouched(model, before)
    assert all(hook.stored_tensors == {} for hook in hooks)
    with pytest.raises(RuntimeError):
        with composite.context(model):
            model(torch.randn(2, 6, dtype=torch.float64, requires_grad=True))  # wrong shape
    assert_untouched(model, before)
    assert composite.hooks == [] and len(composite.handles) == 0


def test_a_raising_module_leaves_no_tag_on_its_input():
    model = bias_free_relu_net()
    handles = hooked(model, {"0": Epsilon()})
    bad = torch.randn(2, 6, dtype=torch.float64, requires_grad=True)
    with pytest.raises(RuntimeError):
        model(bad)
    handles.remove()
    assert not any(name.startswith("_lrp") for name in vars(bad))


def test_inactive_gives_the_plain_gradient():
    model = bias_free_relu_net()
    composite = MapAll({nn.Linear: ZPlus(), nn.ReLU: Pass()})
    x = torch.randn(2, 5, dtype=torch.float64)
    seed = torch.randn(2, 3, dtype=torch.float64)
    _, plain = relevance_of(model, x, seed)
    with composite.context(model):
        with composite.inactive():
            _, inactive = relevance_of(model, x, seed)
        _, active = relevance_of(model, x, seed)
    torch.testing.assert_close(inactive, plain, rtol=0, atol=0)
    assert not torch.allclose(active, plain)


class Recording:
    """Canonizer stub: ``apply`` returns one instance whose removal is logged."""

    def __init__(self, name, log):
        self.name, self.log = name, log

    def apply(self, module):
        self.log.append(f"apply {self.name}")
        return [RemovableHandle(_Removal(self.name, self.log))]


class _Removal:
    def __init__(self, name, log):
        self.name, self.log = name, log

    def remove(self):
        self.log.append(f"remove {self.name}")


def test_canonizers_applied_first_and_removed_in_reverse_order():
    log = []
    composite = MapAll({}, canonizers=[Recording("a", log), Recording("b", log)])
    model = bias_free_relu_net()
    with composite.context(model):
        pass
    assert log == ["apply a", "apply b", "remove b", "remove a"]
    assert [name for name, _ in MapAll({}).unmatched] == []


def test_register_failure_rolls_back():
    log = []

    class Broken(Composite):
        def module_map(self, ctx, name, module):
            if name == "2":
                raise KeyError("no rule")
            return Epsilon() if isinstance(module, nn.Linear) else None

    model = bias_free_relu_net()
    before = snapshot(model)
    composite = Broken(canonizers=[Recording("a", log)])
    with pytest.raises(KeyError):
        composite.register(model)
    assert log == ["apply a", "remove a"]
    assert_untouched(model, before)


def test_param_mod_swaps_temporarily_and_restores_exactly_on_error():
    layer = nn.Linear(3, 2).double()
    weight, bias = layer.weight, layer.bias
    original = weight.detach().clone()
    mod = ParamMod(lambda p, name: p * 2, param_keys=["weight"], zero_params="bias")
    with mod(layer) as module:
        assert module is layer
        torch.testing.assert_close(layer.weight, 2 * original)
        assert torch.count_nonzero(layer.bias) == 0
    assert layer.weight is weight and layer.bias is bias
    with pytest.raises(ZeroDivisionError):
        with mod(layer):
            raise ZeroDivisionError
    assert layer.weight is weight and torch.equal(layer.weight, original)


def test_param_mod_missing_required_key_raises_clearly():
    relu = nn.ReLU()
    with pytest.raises(MissingParameterError, match="weight"):
        with ParamMod(lambda p, n: p, param_keys=["weight"])(relu):
            pass
    with ParamMod(lambda p, n: p, param_keys=["weight"], require_params=False)(relu):
        pass
    assert issubclass(MissingParameterError, RuntimeError)
    assert isinstance(ParamMod.ensure(lambda p, n: p), ParamMod)
    with pytest.raises(TypeError):
        ParamMod.ensure(3)


def test_missing_parameter_during_backward_is_reported():
    hook = BasicHook(param_modifiers=[ParamMod(lambda p, n: p, param_keys=["weight"])])
    relu = nn.ReLU()
    handles = hook.register(relu)
    x = torch.randn(3, requires_grad=True)
    with pytest.raises(MissingParameterError, match="ReLU"):
        torch.autograd.grad(relu(x), x, torch.ones(3))
    handles.remove()


def test_wrong_shaped_backward_result_is_reported():
    class Bad(Hook):
        def backward(self, module, grad_input, grad_output):
            return (torch.zeros(7),)

    layer = nn.Linear(3, 2)
    handles = Bad().register(layer)
    x = torch.randn(1, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match="shapes"):
        torch.autograd.grad(layer(x), x, torch.ones(1, 2))
    handles.remove()


def test_forward_may_replace_the_output():
    class Double(Hook):
        def forward(self, module, input, output):
            return output * 2

    layer = nn.Linear(3, 2)
    x = torch.randn(1, 3, requires_grad=True)
    handles = Double().register(layer)
    out = layer(x)
    (grad,) = torch.autograd.grad(out, x, torch.ones(1, 2))
    handles.remove()
    torch.testing.assert_close(out, 2 * layer(x))
    torch.testing.assert_close(grad, 2 * torch.ones(1, 2) @ layer.weight)


def test_stabilize_and_stabilizer():
    """stabilize(z) = z + ε·s, s = sign(z) with sign(0) = +1; clip sets |z| < ε to ε·s."""
    z = torch.tensor([-2.0, -1e-9, 0.0, 1e-9, 3.0], dtype=torch.float64)
    sign = torch.tensor([-1.0, -1.0, 1.0, 1.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(stabilize(z, 0.1), z + 0.1 * sign, **TOL)
    clipped = torch.tensor([-2.0, -0.1, 0.1, 0.1, 3.0], dtype=torch.float64)
    torch.testing.assert_close(stabilize(z, 0.1, clip=True), clipped, **TOL)
    batch = torch.tensor([[3.0, -4.0], [0.0, 1.0]], dtype=torch.float64)
    rms = torch.tensor([[12.5**0.5], [0.5**0.5]], dtype=torch.float64)
    scaled = batch + 0.1 * rms * torch.tensor([[1.0, -1.0], [1.0, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(Stabilizer(0.1, norm_scale=True)(batch), scaled, **TOL)
    assert isinstance(Stabilizer.ensure(0.5), Stabilizer) and Stabilizer.ensure(0.5).epsilon == 0.5
    custom = lambda t: t  # noqa: E731
    assert Stabilizer.ensure(custom) is custom
    with pytest.raises(ValueError, match="stabilizer"):
        Stabilizer.ensure("x")


def test_expand_and_collect_leaves():
    assert expand(2.0, (2, 3)).shape == (2, 3)
    low = torch.arange(4.0).reshape(4, 1)
    torch.testing.assert_close(expand(low, (2, 3), cut_batch_dim=True), low[:2].expand(2, 3))
    with pytest.raises(ValueError, match="expand"):
        expand(torch.zeros(3), (2, 4))
    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.ReLU(), nn.Linear(2, 1)))
    assert list(collect_leaves(model)) == [model[0], model[1][0], model[1][1]]
    assert list(collect_leaves(model[0])) == [model[0]]


def test_basic_hook_modifier_lists_must_agree():
    with pytest.raises(ValueError, match="same length"):
        BasicHook(input_modifiers=[lambda x: x], param_modifiers=[lambda p, n: p] * 2)
    hook = BasicHook(param_modifiers=[lambda p, n: p] * 2)
    assert len(hook.input_modifiers) == len(hook.output_modifiers) == 2


def test_broadcast_vjp_regression():
    """Norm on a sum over the last axis, whose VJP is a broadcast (expanded) tensor:
    R_in = x ⊙ R/stab(Σ_k x_k) (regression: the reducer must not write into that tensor)."""

    class SumLast(nn.Module):
        def forward(self, x):
            return x.sum(-1)

    x = torch.randn(2, 3, 4, dtype=torch.float64)
    seed = torch.randn(2, 3, dtype=torch.float64)
    _, got = relevance_with(Norm(), SumLast(), x, seed)
    want = x * (seed / ref.stab(x.sum(-1))).unsqueeze(-1)
    torch.testing.assert_close(got, want, **TOL)


def test_output_changed_in_place_after_the_hooked_module():
    """Epsilon reuses the forward's output z; if later code adds to it in place, z is recomputed:
    the relevance equals that of the same model written out of place."""

    class AddAfter(nn.Module):
        def __init__(self, in_place):
            super().__init__()
            torch.manual_seed(8)
            self.linear, self.in_place = nn.Linear(4, 3).double(), in_place

        def forward(self, x):
            out = self.linear(x)
            if self.in_place:
                out += 1.0
                return out
            return out + 1.0

    x = torch.randn(2, 4, dtype=torch.float64)
    seed = torch.randn(2, 3, dtype=torch.float64)
    results = []
    for in_place in (False, True):
        model = AddAfter(in_place)
        handles = hooked(model, {"linear": Epsilon()})
        results.append(relevance_of(model, x, seed)[1])
        handles.remove()
    torch.testing.assert_close(results[1], results[0], **TOL)
    reference = ref.per_sample(model.linear, x, seed, ref.epsilon)
    torch.testing.assert_close(results[0], reference, **TOL)
