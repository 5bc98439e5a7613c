"""The examples of the custom-rule documentation (shared/spec/custom-rules-spec.txt), written as
our own programs with ``lrp_core`` imports, each checked against the formula it implements."""

from __future__ import annotations

import torch

from lrp_core.core import BasicHook, Hook, ParamMod
from lrp_core.rules import Epsilon, Pass


def linear_and_input(seed: int = 0):
    torch.manual_seed(seed)
    return torch.nn.Linear(4, 4), torch.randn(1, 4, requires_grad=True)


def run(hook, module, input):
    handles = hook.register(module)
    output = module(input)
    (grad,) = torch.autograd.grad(output, input, torch.ones_like(output))
    handles.remove()
    return output, grad


def test_ignore_passes_the_output_gradient():
    """A hook returning grad_output turns the ReLU into the identity for the gradient."""

    class Ignore(Hook):
        def backward(self, module, grad_input, grad_output):
            return grad_output

    input = torch.randn(1, 4, requires_grad=True)
    _, grad = run(Ignore(), torch.nn.ReLU(), input)
    torch.testing.assert_close(grad, torch.ones(1, 4))
    _, passed = run(Pass(), torch.nn.ReLU(), input)
    torch.testing.assert_close(passed, grad)


class GradTimesInput(Hook):
    """Layer-wise gradient times input: R_in = x ⊙ Wᵀ·1."""

    def forward(self, module, input, output):
        self.stored_tensors["input"] = input

    def backward(self, module, grad_input, grad_output):
        return (self.stored_tensors["input"][0] * grad_input[0],)


def test_grad_times_input():
    module, input = linear_and_input()
    hook = GradTimesInput()
    _, grad = run(hook, module, input)
    torch.testing.assert_close(grad, input * module.weight.sum(0))
    assert hook.stored_tensors == {}  # removed with the handles


class GradTimesScaledNegativeInput(Hook):
    """Gradient times input with the negative part of the input scaled: g ⊙ (x⁺ + s·x⁻)."""

    def __init__(self, scale=0.2):  # no super().__init__(), exactly as in the documentation
        self.scale = scale

    def forward(self, module, input, output):
        self.stored_tensors["input"] = input

    def backward(self, module, grad_input, grad_output):
        stored = self.stored_tensors["input"][0]
        return (grad_input[0] * (stored.clip(min=0.0) + stored.clip(max=0.0) * self.scale),)

    def copy(self):
        return self.__class__(scale=self.scale)


def test_scaled_negative_input_and_copy():
    hook = GradTimesScaledNegativeInput(scale=0.23)
    hook_copy = hook.copy()
    assert hook.scale == hook_copy.scale and hook_copy is not hook
    module, input = linear_and_input(1)
    _, grad = run(hook, module, input)
    x = input.detach()
    want = module.weight.sum(0) * (x.clip(min=0) + 0.23 * x.clip(max=0))
    torch.testing.assert_close(grad, want)


def test_lrp_zero_with_explicit_modifiers():
    """LRP-0: R_in = x ⊙ Wᵀ(1 / z) with z = W x + b."""
    hook = BasicHook(
        input_modifiers=[lambda input: input],
        param_modifiers=[lambda param, _: param],
        output_modifiers=[lambda output: output],
        gradient_mapper=(lambda out_grad, outputs: [out_grad / outputs[0]]),
        reducer=(lambda inputs, gradients: inputs[0] * gradients[0]),
    )
    module, input = linear_and_input(2)
    output, grad = run(hook, module, input)
    want = input * ((1.0 / output) @ module.weight)
    torch.testing.assert_close(grad, want)
    copied = hook.copy()
    assert copied.gradient_mapper is hook.gradient_mapper and copied is not hook


def test_default_basic_hook_is_epsilon():
    module, input = linear_and_input(3)
    _, default = run(BasicHook(), module, input)
    _, epsilon = run(Epsilon(), module, input)
    torch.testing.assert_close(default, epsilon)


class ZPlusReLU(BasicHook):
    """Positive parts of the parameters named in ``names``, all others zero: R_in = x ⊙ W⁺ᵀ(1/z)."""

    def __init__(self, names=None):
        self.names = [] if names is None else names
        super().__init__(param_modifiers=[self._param_modifier])

    def _param_modifier(self, param, name):
        if name in self.names:
            return param.clip(min=0.0)
        return torch.zeros_like(param)


def test_zplus_relu_subclass():
    module, input = linear_and_input(4)
    input = input.detach().abs().requires_grad_()
    _, grad = run(ZPlusReLU(["weight"]), module, input)
    w = module.weight.clip(min=0)
    z = input @ w.T
    want = input * ((1.0 / (z + 1e-6)) @ w)
    torch.testing.assert_close(grad, want)


def test_zplus_with_param_mod_zero_bias():
    """ParamMod(clip, zero_params='bias'): R_in = x ⊙ W⁺ᵀ(1 / stab(W⁺x))."""
    hook = BasicHook(param_modifiers=[ParamMod(lambda x, _: x.clip(min=0.0), zero_params="bias")])
    module, input = linear_and_input(5)
    _, grad = run(hook, module, input)
    w = module.weight.clip(min=0)
    z = input @ w.T
    stabilized = z + 1e-6 * torch.where(z >= 0, 1.0, -1.0)
    torch.testing.assert_close(grad, input * ((1.0 / stabilized) @ w))
    assert torch.count_nonzero(module.bias) > 0  # restored
