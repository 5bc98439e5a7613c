"""Scores of the map alone: conservation error and sparseness (Gini index)."""

from __future__ import annotations

import torch

from ._checks import EvaluationInputError, check_same_shape, check_tensor


def conservation_error(
    relevance: torch.Tensor, seed: torch.Tensor, output: torch.Tensor | None = None
) -> torch.Tensor:
    """Relative conservation error per sample.

    ``error_n = |sum(relevance[n]) - e_n| / |e_n|`` with ``e_n`` the relevance the explanation
    started from: ``e_n = sum(seed[n])`` for LRP, whose backward pass puts ``seed`` in at the
    output (a one-hot seed: relevance 1), or ``e_n = sum(seed[n] * output[n])`` when ``output``
    is given (gradient x input style attributions, which distribute the output's score itself).
    0 for a perfectly conservative explanation.

    Parameters
    ----------
    relevance : torch.Tensor
        input relevance ``(N, ...)``.
    seed : torch.Tensor
        the output weighting the backward pass started from ``(N, ...)``.
    output : torch.Tensor, optional
        the model output, shaped like ``seed``; only for score-distributing methods.

    Returns
    -------
    torch.Tensor
        ``(N,)`` float tensor.

    Raises
    ------
    EvaluationInputError
        on NaN, mismatched shapes or a zero starting relevance.
    """
    relevance = check_tensor("relevance", relevance)
    seed = check_tensor("seed", seed)
    explained = seed
    if output is not None:
        output = check_tensor("output", output)
        check_same_shape("seed", seed, "output", output)
        explained = seed * output
    if relevance.ndim < 1 or seed.ndim < 1 or relevance.shape[0] != seed.shape[0]:
        raise EvaluationInputError(
            f"relevance has {tuple(relevance.shape)[:1]} samples, seed has "
            f"{tuple(seed.shape)[:1]}; the first dimensions must match"
        )
    explained = explained.flatten(1).sum(1)
    zero = (explained == 0).nonzero().flatten().tolist()
    if zero:
        raise EvaluationInputError(
            f"the starting relevance sums to zero for sample(s) {zero}; the relative error is "
            "undefined"
        )
    return (relevance.flatten(1).sum(1) - explained).abs() / explained.abs()


def sparseness(relevance: torch.Tensor) -> torch.Tensor:
    """Gini index of ``|relevance|`` per sample (0: uniform, towards 1: concentrated).

    With ``x_1 <= ... <= x_n`` the sorted absolute values of one sample (all elements, all
    channels) ``gini = sum_i (2 i - n - 1) x_i / (n * sum_i x_i)``, ``i = 1..n``. A map with a
    single non-zero element scores ``1 - 1/n``; a constant map scores 0.

    Parameters
    ----------
    relevance : torch.Tensor
        ``(N, ...)`` relevance.

    Returns
    -------
    torch.Tensor
        ``(N,)`` float tensor.

    Raises
    ------
    EvaluationInputError
        on NaN or a sample whose map is all zero (Gini undefined).
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
