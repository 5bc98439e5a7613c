"""Targets of a live explanation: which weighting of the model output the relevance explains.

A target becomes the *seed* of the backward pass, a tensor shaped like the output ``(N, C, ...)``:

- ``None``: the predicted class of each sample (one-hot at the argmax over axis 1);
- an ``int`` c: class c for every sample (one-hot);
- a sequence or 1-D integer tensor of N class indices: one class per sample (one-hot);
- a floating point tensor broadcastable to the output: used as the weighting itself;
- a callable: ``target(output)`` returns such a tensor.

Top-k predictions are ranks: ``top_k_classes(output, k)[:, r]`` are the classes of rank r.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

Target = int | Sequence[int] | torch.Tensor | Callable[[torch.Tensor], torch.Tensor] | None


class TargetError(ValueError):
    """A target that does not fit the model output."""


def _one_hot(output: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    seed = torch.zeros_like(output)
    index = classes.reshape(-1, *([1] * (output.ndim - 1))).expand(-1, 1, *output.shape[2:])
    return seed.scatter_(1, index, 1.0)


def _check_classes(classes: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    n_classes = output.shape[1]
    bad = (classes < 0) | (classes >= n_classes)
    if bool(bad.any()):
        value = int(classes[bad][0])
        raise TargetError(
            f"target: class index {value} is out of range; the model has {n_classes} classes "
            f"(valid indices 0..{n_classes - 1})"
        )
    return classes


def predicted_classes(output: torch.Tensor) -> torch.Tensor:
    """The argmax class of each sample, shape ``(N,)``."""
    return output.detach().reshape(output.shape[0], output.shape[1], -1).sum(2).argmax(dim=1)


def top_k_classes(output: torch.Tensor, k: int) -> torch.Tensor:
    """The ``k`` highest scoring classes of each sample, shape ``(N, k)``, best first."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= output.shape[1]:
        raise TargetError(f"k must be an int in 1..{output.shape[1]} (the classes), got {k!r}")
    scores = output.detach().reshape(output.shape[0], output.shape[1], -1).sum(2)
    return scores.topk(k, dim=1).indices


def make_seed(target: Target, output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The seed for ``target`` and the per-sample class indices it stands for (or None).

    Raises ``TargetError`` naming ``target`` for an out-of-range class, a wrong length or shape.
    """
    output = output.detach()
    if output.ndim < 2 and (target is None or isinstance(target, int | Sequence)):
        raise TargetError(
            "target: class targets need an output of shape (N, classes), got "
            f"{tuple(output.shape)}; give a weighting tensor shaped like the output instead"
        )
    if target is None:
        classes = predicted_classes(output)
        return _one_hot(output, classes), classes
    if isinstance(target, bool):
        raise TargetError(f"target must be a class index, not a bool ({target!r})")
    if isinstance(target, int):
        classes = torch.full((output.shape[0],), target, dtype=torch.long, device=output.device)
        return _one_hot(output, _check_classes(classes, output)), classes
    if isinstance(target, torch.Tensor) and not target.is_floating_point():
        target = target.tolist() if target.ndim else int(target)
        return make_seed(target, output)
    if isinstance(target, Sequence) and not isinstance(target, str):
        if len(target) != output.shape[0] or not all(
            isinstance(t, int) and not isinstance(t, bool) for t in target
        ):
            raise TargetError(
                f"target: give one int class index per sample ({output.shape[0]} samples), "
                f"got {target!r}"
            )
        classes = torch.tensor(list(target), dtype=torch.long, device=output.device)
        return _one_hot(output, _check_classes(classes, output)), classes
    if callable(target) and not isinstance(target, torch.Tensor):
        target = target(output)
        if not isinstance(target, torch.Tensor):
            raise TargetError(
                f"target: the callable returned {type(target).__name__}, not a tensor"
            )
    if isinstance(target, torch.Tensor):
        try:
            seed = target.to(output).expand(output.shape)
        except RuntimeError:
            raise TargetError(
                f"target: a weighting of shape {tuple(target.shape)} does not broadcast to the "
                f"output shape {tuple(output.shape)}"
            ) from None
        if not bool(torch.isfinite(seed).all()):
            raise TargetError("target: the weighting contains NaN or inf")
        return seed.clone(), None
    raise TargetError(
        f"target must be None, a class index, a list of indices, a tensor or a callable; got "
        f"{type(target).__name__}"
    )
