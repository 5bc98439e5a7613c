"""Modifiers of rules: stabilizers of denominators, parameter modifiers and broadcasting helpers."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from numbers import Real
from typing import Any

import torch


def stabilize(
    input: torch.Tensor,
    epsilon: float = 1e-6,
    clip: bool = False,
    norm_scale: bool = False,
    dim: int | Sequence[int] | None = None,
) -> torch.Tensor:
    """Move ``input`` away from zero: z + ε·s with s = sign(z) and sign(0) = +1.

    With ``norm_scale`` ε is multiplied by the root mean square of ``input`` over ``dim`` (default:
    all but the first axis). With ``clip`` values with |z| < ε are set to ε·s instead of shifted.
    """
    if norm_scale:
        if dim is None:
            dim = tuple(range(1, input.ndim))
        epsilon = epsilon * input.pow(2).mean(dim=dim, keepdim=True).sqrt()
    if isinstance(epsilon, torch.Tensor):
        epsilon = epsilon.to(input.dtype)
    else:
        epsilon = torch.tensor(epsilon, dtype=input.dtype, device=input.device)
    # shift = ε where z ≥ 0, −ε elsewhere: the sign of z + 0 (which turns −0 into +0) copied onto ε
    # (much faster than torch.where; NaN stays NaN after the addition either way)
    shift = input + 0.0
    differentiable = shift.requires_grad or epsilon.requires_grad
    if differentiable or (
        epsilon.ndim > 0 and shift.shape != torch.broadcast_shapes(shift.shape, epsilon.shape)
    ):
        shift = torch.copysign(epsilon, shift)
    else:
        shift = torch.copysign(epsilon, shift, out=shift)
    if clip:
        return torch.where(input.abs() < shift.abs(), shift, input)
    return shift + input if differentiable else shift.add_(input)


def _check_epsilon(epsilon: Any, name: str = "epsilon") -> float:
    if isinstance(epsilon, bool) or not isinstance(epsilon, Real):
        raise ValueError(f"{name} must be a non-negative number, got {epsilon!r}")
    if not math.isfinite(epsilon) or epsilon < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {epsilon!r}")
    return float(epsilon)


class Stabilizer:
    """Callable ``stabilize`` with fixed settings; see :func:`stabilize`."""

    def __init__(
        self,
        epsilon: float = 1e-6,
        clip: bool = False,
        norm_scale: bool = False,
        dim: int | Sequence[int] | None = None,
    ):
        self.epsilon = _check_epsilon(epsilon)
        self.clip = bool(clip)
        self.norm_scale = bool(norm_scale)
        if dim is not None and not isinstance(dim, int):
            if not all(isinstance(d, int) for d in dim):
                raise ValueError(f"dim must be None, an int or a sequence of ints, got {dim!r}")
            dim = tuple(dim)
        self.dim = dim

    def __call__(self, input: torch.Tensor) -> torch.Tensor:
        return stabilize(input, self.epsilon, self.clip, self.norm_scale, self.dim)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Stabilizer) and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash((self.epsilon, self.clip, self.norm_scale, self.dim))

    def __repr__(self) -> str:
        return (
            f"Stabilizer(epsilon={self.epsilon!r}, clip={self.clip!r}, "
            f"norm_scale={self.norm_scale!r}, dim={self.dim!r})"
        )

    @classmethod
    def ensure(cls, value: Any, name: str = "stabilizer") -> Callable[[torch.Tensor], torch.Tensor]:
        """A number becomes ``Stabilizer(epsilon=number)``; stabilizers and callables pass through.

        Raises ``ValueError`` (naming ``name``) for anything else or a negative number.
        """
        if isinstance(value, Stabilizer) or (callable(value) and not isinstance(value, Real)):
            return value
        return cls(epsilon=_check_epsilon(value, name))


def expand(
    tensor: Any,
    shape: Sequence[int],
    cut_batch_dim: bool = False,
    dtype: torch.dtype | None = None,
    device: torch.device | None = None,
) -> torch.Tensor:
    """Broadcast a number or tensor to ``shape``.

    A tensor with fewer axes is broadcast as in ``torch.Tensor.expand`` (leading axes added). With
    ``cut_batch_dim`` a tensor with all axes of ``shape`` but more entries along axis 0 than
    ``shape[0]`` is cut to its first ``shape[0]`` entries.
    Raises ``ValueError`` when the shapes do not fit.
    """
    if not isinstance(tensor, torch.Tensor):
        tensor = torch.tensor(tensor, dtype=dtype, device=device)
    elif dtype is not None or device is not None:
        tensor = tensor.to(dtype=dtype, device=device)
    shape = tuple(shape)
    if tensor.ndim > len(shape):
        raise ValueError(f"cannot expand a tensor of shape {tuple(tensor.shape)} to {shape}")
    if cut_batch_dim and tensor.ndim == len(shape) and tensor.shape[0] > shape[0]:
        tensor = tensor[: shape[0]]
    try:
        return tensor.expand(shape)
    except RuntimeError as error:
        raise ValueError(
            f"cannot expand a tensor of shape {tuple(tensor.shape)} to {shape}: {error}"
        ) from None


def param_identity(param: torch.Tensor, name: str) -> torch.Tensor:
    return param


def zero_params_list(zero_params: Any) -> list[str]:
    if zero_params is None:
        return []
    if isinstance(zero_params, str):
        return [zero_params]
    if isinstance(zero_params, Sequence) and all(isinstance(n, str) for n in zero_params):
        return list(zero_params)
    raise ValueError(f"zero_params must be None, a str or a list of str, got {zero_params!r}")


class ParamMod:
    """Modifier of a module's parameters, applied temporarily: ``with param_mod(module) as m: ...``.

    ``modifier(param, name)`` returns the modified tensor; ``param_keys`` lists the parameter
    names to modify (None: all of the module's own parameters); names in ``zero_params`` are
    replaced by zeros; a listed key the module lacks raises ``MissingParameterError`` when
    ``require_params`` is true. The original parameter objects are put back on exit, also on error.
    """

    def __init__(
        self,
        modifier: Callable[[torch.Tensor, str], torch.Tensor],
        param_keys: Sequence[str] | None = None,
        zero_params: str | Sequence[str] | None = None,
        require_params: bool = True,
    ):
        if not callable(modifier):
            raise ValueError(f"modifier must be callable, got {modifier!r}")
        self.modifier = modifier
        self.param_keys = None if param_keys is None else zero_params_list(param_keys)
        self.zero_params = zero_params_list(zero_params)
        self.require_params = bool(require_params)

    @property
    def is_identity(self) -> bool:
        """Whether this modifier provably leaves every parameter unchanged."""
        return self.modifier is param_identity and not self.zero_params

    @classmethod
    def ensure(cls, modifier: Any) -> ParamMod:
        """Return ``modifier`` if it is a ParamMod, wrap a callable, else raise ``TypeError``."""
        if isinstance(modifier, ParamMod):
            return modifier
        if callable(modifier):
            return cls(modifier)
        raise TypeError(f"expected a ParamMod or a callable(param, name), got {modifier!r}")

    def state_dicts(
        self, module: torch.nn.Module
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """``(original, modified)`` values of the parameters this modifier changes on ``module``
        (which is left unchanged). Raises ``MissingParameterError`` as ``__call__`` does."""
        modified = self._modified(module)
        return {key: getattr(module, key) for key in modified}, modified

    def _modified(self, module: torch.nn.Module) -> dict[str, torch.Tensor]:
        own = dict(module.named_parameters(recurse=False))
        keys = list(own) if self.param_keys is None else list(self.param_keys)
        missing = [key for key in keys if key not in own and key not in module._parameters]
        if missing and self.require_params:
            raise MissingParameterError(
                f"{type(module).__name__} has no parameter(s) {missing}, which this rule requires; "
                "pass require_params=False or use a rule suited to this module."
            )
        keys += [key for key in self.zero_params if key not in keys]
        modified = {}
        with torch.no_grad():
            for key in keys:
                param = own.get(key)
                if param is None:
                    continue
                if key in self.zero_params:
                    modified[key] = torch.zeros_like(param)
                else:
                    modified[key] = self.modifier(param, key)
        return modified

    @contextmanager
    def __call__(self, module: torch.nn.Module) -> Iterator[torch.nn.Module]:
        if self.is_identity:
            yield module
            return
        originals = {}
        try:
            for key, value in self._modified(module).items():
                originals[key] = module._parameters[key]
                module._parameters[key] = value
            yield module
        finally:
            for key, value in originals.items():
                module._parameters[key] = value


class MissingParameterError(RuntimeError):
    """A rule needs a parameter the module does not have."""


def _check_bounds(modifier: str, min: float | None, max: float | None) -> None:
    if min is None and max is None:
        raise ValueError(
            f"{modifier} needs min or max (got min=None and max=None); give min=0.0 to keep "
            "the positive part of the parameters or max=0.0 to keep the negative part."
        )


class ClampMod(ParamMod):
    """Parameters clamped to [min, max] (one of them may be None, not both).

    Raises ``ValueError`` naming ``min`` and ``max`` when neither is given.
    """

    def __init__(self, min: float | None = None, max: float | None = None, **kwargs: Any):
        _check_bounds("ClampMod", min, max)
        self.min, self.max = min, max
        super().__init__(self._clamp, **kwargs)

    def _clamp(self, param: torch.Tensor, name: str) -> torch.Tensor:
        return param.clamp(min=self.min, max=self.max)


class GammaMod(ParamMod):
    """θ + γ·clamp(θ, min, max) (one of min and max may be None, not both).

    Raises ``ValueError`` for a negative or non-numeric ``gamma`` and, naming ``min`` and ``max``,
    when neither bound is given.
    """

    def __init__(
        self, gamma: float = 0.25, min: float | None = None, max: float | None = None, **kwargs
    ):
        if isinstance(gamma, bool) or not isinstance(gamma, Real) or not gamma >= 0:
            raise ValueError(f"gamma must be a number >= 0, got {gamma!r}")
        _check_bounds("GammaMod", min, max)
        self.gamma = float(gamma)
        self.min, self.max = min, max
        super().__init__(self._gamma, **kwargs)

    def _gamma(self, param: torch.Tensor, name: str) -> torch.Tensor:
        return param.clamp(min=self.min, max=self.max).mul_(self.gamma).add_(param)


class NoMod(ParamMod):
    """Parameters unchanged (only ``zero_params`` are zeroed)."""

    def __init__(self, **kwargs: Any):
        super().__init__(param_identity, **kwargs)


# --- input modifiers of the sign-split rules ---
def has_negative(x: torch.Tensor) -> bool:
    """Whether ``x`` has a negative entry."""
    return x.numel() > 0 and bool(x.min() < 0)


def positive_part(x: torch.Tensor) -> torch.Tensor:
    """x⁺ (``x`` itself when it has no negative entries, e.g. after a ReLU: no copy)."""
    return x.clamp(min=0) if has_negative(x) else x


def negative_part(x: torch.Tensor) -> torch.Tensor:
    """x⁻ (a broadcast zero when ``x`` has no negative entries: no memory)."""
    if has_negative(x):
        return x.clamp(max=0)
    return torch.zeros((), dtype=x.dtype, device=x.device).expand(x.shape)
