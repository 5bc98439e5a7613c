"""Canonizers: temporary, output-preserving rewrites of a model that make LRP rules applicable.

A canonizer's ``apply(root_module)`` finds the places it rewrites, registers one instance per
place and returns those instances; each instance's ``remove()`` undoes its rewrite exactly (every
parameter, buffer and attribute is the original object again, so the ``state_dict`` is
bit-identical). Composites apply canonizers before registering rules and remove them in reverse
order afterwards. Rewrites are made on module instances only, never on classes.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

from .types import BatchNorm, ConvolutionTranspose, Linear


class Canonizer(ABC):
    """Base of all canonizers.

    ``apply(root_module)`` registers copies of the canonizer on the parts of ``root_module`` it
    applies to and returns them; ``register(...)`` rewrites one part; ``remove()`` undoes it.
    """

    @abstractmethod
    def apply(self, root_module: nn.Module) -> list[Canonizer]:
        """Rewrite every matching part of ``root_module``; return the registered instances.

        The base implementation registers nothing and returns an empty list, so cooperative
        subclasses can extend ``super().apply(root_module)``.
        """
        return []

    @abstractmethod
    def register(self, *args: Any, **kwargs: Any) -> None:
        """Rewrite one part of a model."""

    @abstractmethod
    def remove(self) -> None:
        """Undo ``register`` exactly; calling it twice is harmless."""

    def copy(self) -> Canonizer:
        """Return a fresh, unregistered canonizer with the same settings."""
        return type(self)()


def apply_all(register_steps: Iterable[Callable[[], list[Canonizer]]]) -> list[Canonizer]:
    """Run canonizer registration steps in order; if one raises, undo the earlier ones and re-raise.

    Each step returns the instances it registered. Returns all of them, in registration order.
    """
    instances: list[Canonizer] = []
    try:
        for step in register_steps:
            instances.extend(step())
    except BaseException:
        for instance in reversed(instances):
            instance.remove()
        raise
    return instances


# --------------------------------------------------------------------------------------------
# batch norm merging


def _scaled_weight(linear: nn.Module, scale: torch.Tensor) -> torch.Tensor:
    """``linear.weight`` (float64) with each output channel multiplied by ``scale``.

    Dense layers and forward convolutions keep output channels on weight axis 0; transposed
    convolutions store (in, out/groups, *kernel), so their output channel is (group, axis 1).
    """
    weight = linear.weight.detach().to(torch.float64)
    if isinstance(linear, ConvolutionTranspose):
        groups = linear.groups
        in_channels, out_per_group, *kernel = weight.shape
        grouped = weight.reshape(groups, in_channels // groups, out_per_group, *kernel)
        grouped = grouped * scale.reshape(groups, 1, out_per_group, *(1,) * len(kernel))
        return grouped.reshape(weight.shape)
    return weight * scale.reshape(-1, *(1,) * (weight.dim() - 1))


def _output_channels(linear: nn.Module) -> int:
    return linear.out_features if isinstance(linear, nn.Linear) else linear.out_channels


def _lift_shadows(modules: Sequence[nn.Module]) -> list[tuple[nn.Module, str, str, Any, Any]]:
    """Move instance attributes that shadow a registered parameter or buffer into the registry.

    The reference library's batch norm merge writes instance attributes over parameters and
    buffers, and its ``remove()`` leaves them in place. The forward reads the shadowing value, so
    it is made the registered one (the model computes the same); ``_restore_shadows`` puts every
    object back. A shadow that is not a valid parameter (a merge of the reference library is
    still active) is refused. Returns ``(module, registry, name, registered, shadow)`` records.
    """
    records = []
    for module in modules:
        for registry in ("_parameters", "_buffers"):
            for name in [n for n in getattr(module, registry) if n in module.__dict__]:
                shadow = module.__dict__[name]
                if registry == "_parameters" and not (
                    shadow is None or isinstance(shadow, nn.Parameter)
                ):
                    raise ValueError(
                        f"MergeBatchNorm: {type(module).__name__}.{name} is overridden by an "
                        "instance attribute that is not a parameter: another library's batch norm "
                        "merge (e.g. zennit's MergeBatchNorm) is still applied; remove it first"
                    )
                records.append((module, registry, name, getattr(module, registry)[name], shadow))
    for module, registry, name, _, shadow in records:
        getattr(module, registry)[name] = shadow
        del module.__dict__[name]
    return records


def _restore_shadows(records: list[tuple[nn.Module, str, str, Any, Any]]) -> None:
    """Undo ``_lift_shadows``: the original registered objects and shadowing attributes."""
    for module, registry, name, registered, shadow in reversed(records):
        getattr(module, registry)[name] = registered
        module.__dict__[name] = shadow


class MergeBatchNorm(Canonizer):
    """Merge a batch norm into the linear layer(s) feeding it; the batch norm becomes an identity.

    With the batch norm in eval mode, ``bn(z) = (z - mean) * s + beta`` with
    ``s = gamma / sqrt(var + eps)``; for ``z = W x + b`` this equals ``W' x + b'`` with
    ``W' = s W`` (per output channel) and ``b' = s b + beta - s mean``, computed in float64 and cast
    back. The batch norm is then set to weight 1, bias 0, running mean 0, running var 1, eps 0.
    Several linears may share one batch norm if each feeds it on its own (not summed).
    ``remove()`` puts the original parameter and buffer objects back (a bias that was ``None`` is
    ``None`` again). Instance attributes that shadow parameters or buffers (left behind by the
    reference library's own merge) are taken into account and restored as well.

    This class merges the pairs given by ``pairs(root_module)``; subclasses find the pairs
    (``SequentialMergeBatchNorm``, ``NamedMergeBatchNorm``). ``register(linears, batch_norm)``
    merges one pair directly; ``linear_params`` (the original ``(weight, bias)`` per linear) and
    ``batch_norm_params`` (the original batch norm state) are what ``remove()`` puts back.
    ``linear_type`` and ``batch_norm_type`` are the module types that can be merged (subclasses
    may narrow them).
    """

    linear_type: tuple[type, ...] = (Linear,)
    batch_norm_type: tuple[type, ...] = (BatchNorm,)

    def __init__(self) -> None:
        self.linears: list[nn.Module] = []
        self.batch_norm: nn.Module | None = None
        self.linear_params: list[tuple[nn.Parameter, nn.Parameter | None]] = []
        self.batch_norm_params: dict[str, Any] = {}
        self._shadows: list[tuple[nn.Module, str, str, Any, Any]] = []

    def pairs(self, root_module: nn.Module) -> Iterator[tuple[list[nn.Module], nn.Module]]:
        """Yield ``(linears, batch_norm)`` pairs of ``root_module`` to merge."""
        raise NotImplementedError(
            "MergeBatchNorm does not search models; use SequentialMergeBatchNorm or "
            "NamedMergeBatchNorm, or call MergeBatchNorm().register(linears, batch_norm)"
        )

    def apply(self, root_module: nn.Module) -> list[Canonizer]:
        """Merge every pair found by ``pairs``; return one registered instance per pair."""
        seen: set[int] = set()

        def merge(linears: list[nn.Module], batch_norm: nn.Module) -> list[Canonizer]:
            for module in (*linears, batch_norm):
                if id(module) in seen:
                    raise ValueError(
                        f"{type(self).__name__}: module {module!r} appears in two merge pairs; "
                        "each linear layer and batch norm can be merged only once"
                    )
                seen.add(id(module))
            instance = MergeBatchNorm()
            instance.linear_type, instance.batch_norm_type = self.linear_type, self.batch_norm_type
            instance.register(linears, batch_norm)
            return [instance]

        found = list(self.pairs(root_module))
        return apply_all(lambda p=pair: merge(*p) for pair in found)

    def register(self, linears: nn.Module | Sequence[nn.Module], batch_norm: nn.Module) -> None:
        """Merge ``batch_norm`` into ``linears`` (one module or a sequence of them)."""
        if self.batch_norm is not None:
            raise RuntimeError("MergeBatchNorm instance is already registered; use copy()")
        linears = [linears] if isinstance(linears, nn.Module) else list(linears)
        self._check(linears, batch_norm)
        if batch_norm.training:
            warnings.warn(
                f"MergeBatchNorm: {type(batch_norm).__name__} is in training mode; the merged "
                "model equals the original only in eval mode (call model.eval() first)",
                UserWarning,
                stacklevel=3,
            )
        self.batch_norm = batch_norm
        try:
            self._shadows = _lift_shadows([*linears, batch_norm])
            scale, shift = self._affine(batch_norm)
            self._merge_linears(linears, scale, shift)
            self._make_identity(batch_norm)
        except BaseException:
            self.remove()
            raise

    def remove(self) -> None:
        """Restore the original parameter and buffer objects of the linears and the batch norm."""
        for linear, (weight, bias) in zip(self.linears, self.linear_params, strict=True):
            linear.weight = weight
            linear.bias = bias
        if self.batch_norm is not None:
            for name, value in self.batch_norm_params.items():
                setattr(self.batch_norm, name, value)
        _restore_shadows(self._shadows)
        self.linears, self.batch_norm = [], None
        self.linear_params, self.batch_norm_params, self._shadows = [], {}, []

    @staticmethod
    def merge_batch_norm(modules: Sequence[nn.Module], batch_norm: nn.Module) -> None:
        """Merge ``batch_norm`` into the linear layers ``modules`` for good (nothing to remove).

        The same merge as ``register``, but the original parameters are not kept.
        """
        MergeBatchNorm().register(modules, batch_norm)

    def _check(self, linears: list[nn.Module], batch_norm: nn.Module) -> None:
        if not isinstance(batch_norm, self.batch_norm_type):
            raise TypeError(
                f"MergeBatchNorm: expected a batch norm layer, got {type(batch_norm).__name__}"
            )
        if batch_norm.running_mean is None or batch_norm.running_var is None:
            raise ValueError(
                "MergeBatchNorm: the batch norm has no running statistics "
                "(track_running_stats=False), so it cannot be merged into a linear layer"
            )
        if not linears:
            raise ValueError("MergeBatchNorm: no linear layers given to merge the batch norm into")
        for linear in linears:
            if not isinstance(linear, self.linear_type):
                raise TypeError(
                    "MergeBatchNorm: batch norms merge only into linear layers (nn.Linear, "
                    f"convolutions, transposed convolutions), got {type(linear).__name__}"
                )
            if not isinstance(linear._parameters.get("weight"), nn.Parameter) or isinstance(
                linear.weight, nn.parameter.UninitializedParameter
            ):
                raise TypeError(
                    f"MergeBatchNorm: {type(linear).__name__} has no initialised plain weight "
                    "parameter (lazy or parametrized modules cannot be merged)"
                )
            if _output_channels(linear) != batch_norm.num_features:
                raise ValueError(
                    f"MergeBatchNorm: {type(linear).__name__} has {_output_channels(linear)} "
                    f"output channels but the batch norm has {batch_norm.num_features} features"
                )

    @staticmethod
    def _affine(batch_norm: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel ``(s, beta - s * mean)`` of the eval-mode batch norm, in float64."""
        mean = batch_norm.running_mean.detach().to(torch.float64)
        var = batch_norm.running_var.detach().to(torch.float64)
        scale = 1.0 / torch.sqrt(var + batch_norm.eps)
        if batch_norm.weight is not None:
            scale = scale * batch_norm.weight.detach().to(torch.float64)
        shift = -mean * scale
        if batch_norm.bias is not None:
            shift = shift + batch_norm.bias.detach().to(torch.float64)
        return scale, shift

    def _merge_linears(self, linears: list[nn.Module], scale: torch.Tensor, shift: torch.Tensor):
        for linear in linears:
            weight, bias = linear.weight, linear.bias
            self.linears.append(linear)
            self.linear_params.append((weight, bias))
            old_bias = torch.zeros_like(shift) if bias is None else bias.detach().to(torch.float64)
            new_weight = _scaled_weight(linear, scale).to(weight.dtype)
            new_bias = (old_bias * scale + shift).to(weight.dtype)
            linear.weight = nn.Parameter(new_weight, requires_grad=weight.requires_grad)
            linear.bias = nn.Parameter(
                new_bias, requires_grad=weight.requires_grad if bias is None else bias.requires_grad
            )

    def _make_identity(self, batch_norm: nn.Module) -> None:
        state = {
            "running_mean": batch_norm.running_mean,
            "running_var": batch_norm.running_var,
            "eps": batch_norm.eps,
        }
        if batch_norm.weight is not None:
            state["weight"] = batch_norm.weight
        if batch_norm.bias is not None:
            state["bias"] = batch_norm.bias
        self.batch_norm_params = state
        # assigning a tensor to a registered buffer name replaces the buffer object in place;
        # var = 1 - eps makes var + eps exactly 1 while eps keeps its positive value (torch 2.10
        # to 2.12 reject eps = 0 in batch_norm)
        batch_norm.running_mean = torch.zeros_like(state["running_mean"])
        one = torch.ones_like(state["running_var"], dtype=torch.float64)
        batch_norm.running_var = (one - batch_norm.eps).to(state["running_var"].dtype)
        if "weight" in state:
            batch_norm.weight = nn.Parameter(
                torch.ones_like(state["weight"]), requires_grad=state["weight"].requires_grad
            )
        if "bias" in state:
            batch_norm.bias = nn.Parameter(
                torch.zeros_like(state["bias"]), requires_grad=state["bias"].requires_grad
            )


class SequentialMergeBatchNorm(MergeBatchNorm):
    """Merge every batch norm that directly follows a linear layer inside an ``nn.Sequential``."""

    def pairs(self, root_module: nn.Module) -> Iterator[tuple[list[nn.Module], nn.Module]]:
        """Yield ``([linear], batch_norm)`` for consecutive children of sequential containers."""
        for module in root_module.modules():
            if not isinstance(module, nn.Sequential):
                continue
            children = list(module.children())
            for previous, current in zip(children, children[1:], strict=False):
                if isinstance(previous, self.linear_type) and isinstance(
                    current, self.batch_norm_type
                ):
                    yield [previous], current


class NamedMergeBatchNorm(MergeBatchNorm):
    """Merge batch norms into linear layers given by their qualified names.

    Parameters
    ----------
    name_map:
        A list of ``(linear_names, batch_norm_name)``, where ``linear_names`` is a tuple of names
        (or one name) of the layers that feed the batch norm, as in ``model.named_modules()``.
    """

    def __init__(self, name_map: Sequence[tuple[str | Sequence[str], str]]) -> None:
        super().__init__()
        self.name_map = [
            ((names,) if isinstance(names, str) else tuple(names), batch_norm_name)
            for names, batch_norm_name in name_map
        ]

    def copy(self) -> NamedMergeBatchNorm:
        return NamedMergeBatchNorm(self.name_map)

    def pairs(self, root_module: nn.Module) -> Iterator[tuple[list[nn.Module], nn.Module]]:
        """Yield the modules named by ``name_map``; a missing name raises ``ValueError``."""
        modules = dict(root_module.named_modules())

        def lookup(name: str) -> nn.Module:
            if name not in modules:
                raise ValueError(
                    f"NamedMergeBatchNorm: the model has no module named {name!r}; names come from "
                    "model.named_modules(), e.g. " + ", ".join(repr(n) for n in list(modules)[1:6])
                )
            return modules[name]

        for linear_names, batch_norm_name in self.name_map:
            yield [lookup(name) for name in linear_names], lookup(batch_norm_name)


# --------------------------------------------------------------------------------------------
# attributes


_MISSING = object()
_MODULE_STORES = ("_parameters", "_buffers", "_modules")


class AttributeCanonizer(Canonizer):
    """Set attributes on module instances (e.g. a replacement ``forward`` and helper modules).

    Parameters
    ----------
    attribute_map:
        ``attribute_map(name, module)`` returns a dict of attributes to set on ``module``, or
        ``None`` to leave it alone. Values are set with ``setattr``, so ``nn.Module`` values
        become child modules. ``remove()`` restores every original attribute object in its
        original place and deletes those that did not exist on the instance (so a class
        attribute such as the class's ``forward`` is visible again).

    A registered instance holds ``module`` and ``attribute_keys`` (the names it set; None until
    ``register``).
    """

    def __init__(
        self, attribute_map: Callable[[str, nn.Module], dict[str, Any] | None] | None = None
    ) -> None:
        if attribute_map is not None and not callable(attribute_map):
            raise TypeError("AttributeCanonizer: attribute_map must be callable(name, module)")
        self.attribute_map = attribute_map
        self.module: nn.Module | None = None
        self.attribute_keys: list[str] | None = None
        self._originals: dict[str, tuple[str | None, Any, bool]] = {}

    def copy(self) -> AttributeCanonizer:
        return type(self)(self.attribute_map)

    def apply(self, root_module: nn.Module) -> list[Canonizer]:
        """Register one instance per module for which ``attribute_map`` returns attributes."""
        if self.attribute_map is None:
            raise TypeError("AttributeCanonizer: no attribute_map given")

        def step(name: str, module: nn.Module) -> list[Canonizer]:
            attributes = self.attribute_map(name, module)
            if not attributes:
                return []
            instance = AttributeCanonizer(self.attribute_map)
            instance.register(module, attributes)
            return [instance]

        named = list(root_module.named_modules())
        return apply_all((lambda n=n, m=m: step(n, m) for n, m in named))

    def register(self, module: nn.Module, attributes: dict[str, Any]) -> None:
        """Set ``attributes`` on ``module``, remembering what was there."""
        if self.module is not None:
            raise RuntimeError("AttributeCanonizer instance is already registered; use copy()")
        self.module, self.attribute_keys = module, list(attributes)
        try:
            for key, value in attributes.items():
                self._originals[key] = _locate_attribute(module, key)
                setattr(module, key, value)
        except BaseException:
            self.remove()
            raise

    def remove(self) -> None:
        """Put back every original attribute (same object, same place) and drop the added ones."""
        if self.module is not None:
            for key, original in reversed(list(self._originals.items())):
                _restore_attribute(self.module, key, original)
        self.module, self._originals = None, {}


def _locate_attribute(module: nn.Module, key: str) -> tuple[str | None, Any, bool]:
    """Where ``key`` lives on the instance: (store or None if absent, value, non-persistent)."""
    non_persistent = key in module.__dict__.get("_non_persistent_buffers_set", ())
    for store in _MODULE_STORES:
        values = module.__dict__.get(store)
        if values is not None and key in values:
            return store, values[key], non_persistent
    if key in module.__dict__:
        return "__dict__", module.__dict__[key], non_persistent
    return None, _MISSING, non_persistent


def _restore_attribute(module: nn.Module, key: str, original: tuple[str | None, Any, bool]):
    store, value, non_persistent = original
    # Remove the key from every place except its original one, then reassign it there in place
    # (reassigning an existing dict key keeps the order of parameters, buffers and modules).
    for other in (*_MODULE_STORES, "__dict__"):
        if other == store:
            continue
        values = module.__dict__ if other == "__dict__" else module.__dict__.get(other)
        if values is not None:
            values.pop(key, None)
    if store == "__dict__":
        module.__dict__[key] = value
    elif store is not None:
        module.__dict__[store][key] = value
    persistence = module.__dict__.get("_non_persistent_buffers_set")
    if persistence is not None:
        if non_persistent:
            persistence.add(key)
        else:
            persistence.discard(key)


# --------------------------------------------------------------------------------------------
# grouping


class CompositeCanonizer(Canonizer):
    """Apply several canonizers in the given order (removal happens in reverse order).

    Parameters
    ----------
    canonizers:
        The canonizers to apply, first to last.
    """

    def __init__(self, canonizers: Sequence[Canonizer]) -> None:
        canonizers = list(canonizers)
        for canonizer in canonizers:
            if not callable(getattr(canonizer, "apply", None)):
                raise TypeError(
                    "CompositeCanonizer: every element must be a canonizer with apply(module), "
                    f"got {type(canonizer).__name__}"
                )
        self.canonizers = canonizers
        self._instances: list[Canonizer] = []

    def copy(self) -> CompositeCanonizer:
        return CompositeCanonizer([canonizer.copy() for canonizer in self.canonizers])

    def apply(self, root_module: nn.Module) -> list[Canonizer]:
        """Apply each canonizer in order; return all registered instances in that order."""
        steps = (lambda c=c: list(c.apply(root_module)) for c in self.canonizers)
        self._instances = apply_all(steps)
        return list(self._instances)

    def register(self) -> None:
        """Nothing to do: a composite canonizer registers its members through ``apply``."""

    def remove(self) -> None:
        """Remove the instances of the last ``apply`` in reverse order."""
        for instance in reversed(self._instances):
            instance.remove()
        self._instances = []


__all__ = [
    "AttributeCanonizer",
    "Canonizer",
    "CompositeCanonizer",
    "MergeBatchNorm",
    "NamedMergeBatchNorm",
    "SequentialMergeBatchNorm",
    "apply_all",
]
