"""Scores of the map alone: conservation error and sparseness (Gini index)."""

from __future__ import annotations

import torch

from ._checks import EvaluationInputError, check_same_shape, check_tensor


def conservation_error(
    relevance: torch.Tensor, output: torch.Tensor, seed: torch.Tensor
) -> torch.Tensor:
    """Relative conservation error per sample.

    ``error_n = |sum(relevance[n]) - sum(seed[n] * output[n])| / |sum(seed[n] * output[n])|``,
    i.e. how far the relevance at the input misses the explained part of the output
    (0 for a perfectly conservative explanation).

    Args:
        relevance: input relevance ``(N, ...)``.
        output: model output ``(N, ...)``.
        seed: the output weighting the backward pass started from, shaped like ``output``.

    Returns:
        ``(N,)`` float tensor.

    Raises:
        EvaluationInputError: on NaN, mismatched shapes or a zero explained output.
    """
    relevance = check_tensor("relevance", relevance)
    output = check_tensor("output", output)
    seed = check_tensor("seed", seed)
    check_same_shape("seed", seed, "output", output)
    if relevance.ndim < 1 or relevance.shape[0] != output.shape[0]:
        raise EvaluationInputError(
            f"relevance has {tuple(relevance.shape)[:1]} samples, output has "
            f"{tuple(output.shape)[:1]}; the first dimensions must match"
        )
    explained = (seed * output).flatten(1).sum(1)
    zero = (explained == 0).nonzero().flatten().tolist()
    if zero:
        raise EvaluationInputError(
            f"seed * output sums to zero for sample(s) {zero}; the relative error is undefined"
        )
    return (relevance.flatten(1).sum(1) - explained).abs() / explained.abs()


def sparseness(relevance: torch.Tensor) -> torch.Tensor:
    """Gini index of ``|relevance|`` per sample (0: uniform, towards 1: concentrated).

    With ``x_1 <= ... <= x_n`` the sorted absolute values of one sample (all elements, all
    channels) ``gini = sum_i (2 i - n - 1) x_i / (n * sum_i x_i)``, ``i = 1..n``. A map with a
    single non-zero element scores ``1 - 1/n``; a constant map scores 0.

    Args:
        relevance: ``(N, ...)`` relevance.

    Returns:
        ``(N,)`` float tensor.

    Raises:
        EvaluationInputError: on NaN or a sample whose map is all zero (Gini undefined).
    """
    relevance = check_tensor("relevance", relevance)
    if relevance.ndim < 2:
        raise EvaluationInputError(
            f"relevance must be batched (N, ...), got shape {tuple(relevance.shape)}"
        )
    x = relevance.flatten(1).abs().double().sort(1).values
    n = x.shape[1]
    total = x.sum(1)
    zero = (total == 0).nonzero().flatten().tolist()
    if zero:
        raise EvaluationInputError(
            f"relevance is all zero for sample(s) {zero}; sparseness is undefined"
        )
    weights = 2 * torch.arange(1, n + 1, dtype=x.dtype) - n - 1
    return ((x * weights).sum(1) / (n * total)).to(relevance.dtype)
