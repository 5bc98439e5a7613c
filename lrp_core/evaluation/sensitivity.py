"""Class sensitivity: how much an explanation changes when the explained class changes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ._checks import EvaluationInputError, Progress, check_tensor, report

Explain = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``explain(inputs, targets) -> relevance``: targets are ``(N,)`` class indices."""


@dataclass(frozen=True)
class ClassSensitivity:
    """Result of :func:`class_sensitivity`.

    Attributes
    ----------
    similarity : torch.Tensor
        ``(N,)`` similarity of the two maps (low: the map depends on the class).
    targets : torch.Tensor
        ``(N,)`` explained classes.
    others : torch.Tensor
        ``(N,)`` classes compared against.
    """

    similarity: torch.Tensor
    targets: torch.Tensor
    others: torch.Tensor


def _classes(name: str, value: int | Sequence[int] | torch.Tensor, n: int) -> torch.Tensor:
    classes = torch.as_tensor(value)
    if classes.is_floating_point() or classes.is_complex() or classes.dtype == torch.bool:
        raise EvaluationInputError(f"{name} must hold integer class indices, got {classes.dtype}")
    classes = classes.long().reshape(-1)
    if classes.numel() == 1:
        classes = classes.expand(n)
    if classes.numel() != n:
        raise EvaluationInputError(f"{name} must give 1 or {n} classes, got {classes.numel()}")
    if (classes < 0).any():
        raise EvaluationInputError(f"{name} holds a negative class index")
    return classes.clone()


def random_other_classes(
    targets: torch.Tensor, num_classes: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """For each target draw a class uniformly from the ``num_classes - 1`` other classes."""
    if num_classes < 2:
        raise EvaluationInputError(f"num_classes must be >= 2, got {num_classes}")
    draw = torch.randint(0, num_classes - 1, targets.shape, generator=generator)
    return draw + (draw >= targets).long()  # skip the target itself


def _similarity(a: torch.Tensor, b: torch.Tensor, measure: str) -> torch.Tensor:
    a, b = a.flatten(1).double(), b.flatten(1).double()
    if measure == "correlation":
        a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    norms = a.norm(dim=1) * b.norm(dim=1)
    flat = (norms == 0).nonzero().flatten().tolist()
    if flat:
        what = "constant" if measure == "correlation" else "all zero"
        raise EvaluationInputError(
            f"explain returned a map that is {what} for sample(s) {flat}; the {measure} is "
            "undefined"
        )
    return (a * b).sum(1) / norms


def class_sensitivity(
    explain: Explain,
    inputs: torch.Tensor,
    targets: int | Sequence[int] | torch.Tensor,
    others: int | Sequence[int] | torch.Tensor | None = None,
    *,
    num_classes: int | None = None,
    measure: str = "cosine",
    generator: torch.Generator | None = None,
    progress: Progress | None = None,
) -> ClassSensitivity:
    """Similarity between the map of the target class and the map of another class.

    ``similarity_n = <R_t, R_o> / (|R_t| |R_o|)`` over all elements of sample ``n`` (cosine),
    or the same after subtracting each map's mean (Pearson correlation), where
    ``R_t = explain(inputs, targets)`` and ``R_o = explain(inputs, others)``. A map that does not
    depend on the class scores 1; lower is more class-sensitive.

    Parameters
    ----------
    explain : Explain
        ``explain(inputs, classes) -> relevance`` with ``classes`` a ``(N,)`` long tensor.
    inputs : torch.Tensor
        ``(N, ...)`` batch.
    targets : int | Sequence[int] | torch.Tensor
        the explained class, one for all or one per sample.
    others : int | Sequence[int] | torch.Tensor, optional
        classes to compare with; ``None`` draws one uniformly among the other
        ``num_classes - 1`` classes per sample (random-logit style).
    num_classes : int, optional
        number of classes, needed when ``others`` is ``None``.
    measure : str
        ``"cosine"`` or ``"correlation"``.
    generator : torch.Generator, optional
        random generator for the draw, for reproducible results.
    progress : Progress, optional
        called as ``progress(k, 2)`` after each of the two explanations.

    Raises
    ------
    EvaluationInputError
        on bad arguments or maps of the wrong shape, NaN or all zero.
    Cancelled
        when ``progress`` cancels.
    """
    inputs = check_tensor("inputs", inputs)
    if measure not in ("cosine", "correlation"):
        raise EvaluationInputError(f"measure must be 'cosine' or 'correlation', got {measure!r}")
    n = inputs.shape[0]
    targets = _classes("targets", targets, n)
    if others is None:
        if num_classes is None:
            raise EvaluationInputError(
                "give num_classes, or explicit others, to draw other classes"
            )
        if (targets >= num_classes).any():
            raise EvaluationInputError(f"targets holds a class index >= num_classes={num_classes}")
        others = random_other_classes(targets, num_classes, generator)
    else:
        others = _classes("others", others, n)
    maps = []
    for step, classes in enumerate((targets, others), start=1):
        relevance = check_tensor("the map returned by explain", explain(inputs, classes))
        if relevance.ndim == 0 or relevance.shape[0] != n:
            raise EvaluationInputError(
                f"explain returned shape {tuple(relevance.shape)}; expected {n} samples first"
            )
        maps.append(relevance)
        report(progress, step, 2)
    if maps[0].shape != maps[1].shape:
        raise EvaluationInputError("explain returned maps of different shapes for the two classes")
    similarity = _similarity(maps[0], maps[1], measure).to(maps[0].dtype)
    return ClassSensitivity(similarity=similarity, targets=targets, others=others)
