"""Checks of what users and the page give the Explorer, with messages that say how to fix it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import torch
import traitlets

from lrp_core.composites import COMPOSITES, get_composite


class UnknownLayerError(ValueError, traitlets.TraitError):
    """A layer name that is not a module of the explored model."""


def composite_key(name: str) -> str:
    """The registered name of a composite preset, from ``"epsilon_plus_flat"`` or its class-style
    spelling ``"EpsilonPlusFlat"``.

    Raises
    ------
    ValueError
        no composite is registered under that name; the message lists them.
    """
    try:
        cls = get_composite(name)
    except ValueError:
        raise ValueError(
            f"unknown composite {name!r}; choose one of {sorted(COMPOSITES)} "
            "(or pass a Composite instance)"
        ) from None
    return name if name in COMPOSITES else next(k for k, c in COMPOSITES.items() if c is cls)


def check_layer_names(names: Iterable[str], known: frozenset[str], model_name: str) -> None:
    """Raise ``UnknownLayerError`` for names not in ``known``, suggesting close ones."""
    unknown = [name for name in names if name not in known]
    if not unknown:
        return
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(str(name), sorted(known), n=3)
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        hints.append(f"{name!r}{hint}")
    raise UnknownLayerError(
        f"{', '.join(hints)} {'is not a layer' if len(unknown) == 1 else 'are not layers'} "
        f"of {model_name}. Valid names are those of model.named_modules(), listed in "
        "explorer.layer_names."
    )


def check_inputs(inputs: object) -> torch.Tensor:
    """``inputs`` if it is a non-empty tensor batch; raises TypeError / ValueError otherwise."""
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(
            f"inputs must be a torch.Tensor batch of shape [N, ...], got {type(inputs).__name__}. "
            "Convert with torch.as_tensor(...) and add a batch dimension if needed."
        )
    if inputs.ndim == 0 or inputs.shape[0] == 0:
        raise ValueError(
            f"inputs must be a non-empty batch of shape [N, ...], got shape {tuple(inputs.shape)}. "
            "For a single sample use x.unsqueeze(0)."
        )
    return inputs
