"""Test helpers: non-trivial batch norm statistics and exact model-state comparison."""

import torch
from torch import nn


def randomize_batch_norms(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every batch norm non-trivial statistics and affine parameters (both signs of gamma)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                shape = module.running_mean.shape
                module.running_mean.copy_(torch.randn(shape, generator=generator))
                module.running_var.copy_(torch.rand(shape, generator=generator) * 2 + 0.2)
                if module.weight is not None:
                    sign = torch.randint(0, 2, shape, generator=generator) * 2 - 1
                    module.weight.copy_(sign * (torch.rand(shape, generator=generator) + 0.5))
                    module.bias.copy_(torch.randn(shape, generator=generator))
    return model.eval()


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.clone() for key, value in model.state_dict().items()}


def assert_restored(model: nn.Module, before: dict[str, torch.Tensor], objects: dict) -> None:
    after = model.state_dict()
    assert list(after) == list(before)
    for key, value in before.items():
        assert after[key].dtype == value.dtype and torch.equal(after[key], value), key
    for name, tensor in objects.items():
        module_name, _, attribute = name.rpartition(".")
        assert getattr(model.get_submodule(module_name), attribute) is tensor, name


def tensor_objects(model: nn.Module) -> dict:
    """Every parameter and buffer object (and None biases) by qualified name."""
    objects = {}
    for module_name, module in model.named_modules():
        for store in (module._parameters, module._buffers):
            for key, value in store.items():
                objects[f"{module_name}.{key}"] = value
    return objects


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return ((actual - expected).abs().max() / expected.abs().max()).item()


class ModelState:
    """Everything of a model that explaining must leave exactly as it was: the state dict
    (values and dtypes), the parameter and buffer objects, the hooks of every module and the
    training flags.

    >>> before = ModelState(model)
    >>> ...  # anything that may fail
    >>> before.assert_same(model)
    """

    def __init__(self, model: nn.Module):
        self.tensors = snapshot(model)
        self.objects = tensor_objects(model)
        self.training = [module.training for module in model.modules()]
        self.modules = list(model.modules())

    def assert_same(self, model: nn.Module) -> None:
        assert_restored(model, self.tensors, self.objects)
        assert set(tensor_objects(model)) == set(self.objects), "parameters added or removed"
        assert list(model.modules()) == self.modules, "modules added or removed"
        assert [module.training for module in model.modules()] == self.training
        left = {
            name: kind
            for name, module in model.named_modules()
            for kind in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks")
            if getattr(module, kind)
        }
        assert not left, f"hooks left behind: {left}"
