"""``Sum(dim)``: value ``y = sum_k x[..., k, ...]``, gradient ``dy/dx_k = 1`` per summand."""

import numpy as np
import pytest
import torch

from lrp_core.layer import Sum


@pytest.mark.parametrize("dim", [-1, 0, 1, 2])
def test_sum_value_matches_numpy(dim):
    x = torch.randn(2, 3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(dim + 5))
    np.testing.assert_allclose(Sum(dim)(x).numpy(), x.numpy().sum(axis=dim), rtol=1e-12)


def test_residual_addition_equals_sum_of_stacked_summands():
    generator = torch.Generator().manual_seed(0)
    a, b = (
        torch.randn(2, 2, 3, 3, generator=generator),
        torch.randn(2, 2, 3, 3, generator=generator),
    )
    torch.testing.assert_close(Sum()(torch.stack([a, b], dim=-1)), a + b, rtol=0, atol=0)


def test_sum_gradient_is_the_output_gradient_broadcast_to_every_summand():
    # d/dx_{i,k} of sum_i g_i * (sum_k x_{i,k}) = g_i (explicit Jacobian: ones on the summed axis)
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    grad_output = torch.randn(3, dtype=torch.float64)
    (grad,) = torch.autograd.grad(Sum(dim=1)(x), x, grad_output)
    jacobian = np.kron(np.eye(3), np.ones((1, 4)))  # [3 outputs, 12 inputs]
    np.testing.assert_allclose(grad.numpy().ravel(), jacobian.T @ grad_output.numpy(), rtol=1e-12)


def test_sum_rejects_non_integer_dim():
    with pytest.raises(TypeError, match="dim must be an int"):
        Sum(dim=1.5)
    assert "dim=-1" in repr(Sum())
