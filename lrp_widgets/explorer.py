"""The Explorer widget: a PyTorch model's layer tree in a notebook.

The Python side holds only validated traits and commands; drawing and interaction live in the
front end (``js/src/explorer.ts``). This first version lists the modules of the model and syncs
the user's selection both ways.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

import anywidget
import torch
import traitlets
from torch import nn

from lrp_widgets._static import bundle_text

STATUSES = ("ready", "computing", "error")


def describe_layers(model: nn.Module) -> list[dict[str, Any]]:
    """List the modules of ``model`` below the root, parents before children.

    Names and order follow ``model.named_modules()`` (a module reachable under two names is
    listed once, under the first). Each entry is a dict with ``name`` (qualified name),
    ``parent`` (qualified name of the parent module, ``""`` for the root's children), ``type``
    (class name) and ``params`` (parameter elements of the module and its descendants).
    """
    layers = []
    for name, module in model.named_modules():
        if name == "":
            continue
        layers.append(
            {
                "name": name,
                "parent": name.rpartition(".")[0],
                "type": type(module).__name__,
                "params": count_parameters(module),
            }
        )
    return layers


def count_parameters(module: nn.Module) -> int:
    """Number of parameter elements in ``module`` and its descendants (lazy ones count 0)."""
    return sum(
        0 if isinstance(p, nn.parameter.UninitializedParameter) else p.numel()
        for p in module.parameters()
    )


class Explorer(anywidget.AnyWidget):
    """Interactive view of a PyTorch model's layers.

    Args:
        model: the network to explore.
        inputs: an optional batch of inputs for the model, shape ``[N, ...]``; kept for the
            explanations (later versions); not sent to the front end yet.

    Raises:
        TypeError: ``model`` is not an ``nn.Module`` or ``inputs`` is not a tensor.
        ValueError: ``inputs`` has no batch dimension or is empty.
        BundleMissingError: the front end was not built (see ``lrp_widgets._static``).

    Example:
        >>> explorer = Explorer(model, images)
        >>> explorer.select("features.0")
        >>> explorer.selected
        ['features.0']
    """

    _esm = traitlets.Unicode().tag(sync=True)
    _css = traitlets.Unicode().tag(sync=True)

    model_name = traitlets.Unicode(read_only=True, help="Class name of the model.").tag(sync=True)
    total_params = traitlets.Int(read_only=True, help="Parameter elements in the model.").tag(
        sync=True
    )
    layers = traitlets.List(
        traitlets.Dict(),
        read_only=True,
        help="The model's modules below the root; see describe_layers().",
    ).tag(sync=True)
    selected = traitlets.List(
        traitlets.Unicode(),
        help="Qualified names of the selected layers, in selection order.",
    ).tag(sync=True)
    status = traitlets.Enum(STATUSES, default_value="ready", help="Widget state.").tag(sync=True)
    error = traitlets.Unicode("", help="Message of the last error, '' if none.").tag(sync=True)

    def __init__(self, model: nn.Module, inputs: torch.Tensor | None = None) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(
                f"Explorer(model, ...) needs a torch.nn.Module, got {type(model).__name__}. "
                "Pass the network itself, e.g. Explorer(load_model(), images)."
            )
        self._model = model
        self._inputs = _check_inputs(inputs)
        layers = describe_layers(model)
        self._layer_names = frozenset(layer["name"] for layer in layers)
        super().__init__(_esm=bundle_text("explorer.js"), _css=bundle_text("explorer.css"))
        self.set_trait("model_name", type(model).__name__)
        self.set_trait("total_params", count_parameters(model))
        self.set_trait("layers", layers)

    @property
    def model(self) -> nn.Module:
        """The model being explored (the same object that was passed in)."""
        return self._model

    @property
    def inputs(self) -> torch.Tensor | None:
        """The batch of inputs passed in, or ``None``."""
        return self._inputs

    @property
    def layer_names(self) -> list[str]:
        """Qualified names of all layers shown in the tree, in tree order."""
        return [layer["name"] for layer in self.layers]

    def select(self, names: str | Iterable[str]) -> None:
        """Select layers by qualified name (replacing the current selection) and show it.

        Args:
            names: one name or several; an empty list clears the selection.

        Raises:
            TypeError: a name is not a string.
            ValueError: a name is not a layer of the model; the message suggests close names.
        """
        wanted = [names] if isinstance(names, str) else list(names)
        for name in wanted:
            if not isinstance(name, str):
                raise TypeError(
                    f"Layer names must be strings like 'features.0', got {name!r} "
                    f"({type(name).__name__})."
                )
        self.selected = wanted

    @traitlets.validate("selected")
    def _validate_selected(self, proposal: dict[str, Any]) -> list[str]:
        names = list(proposal["value"])
        unknown = [name for name in names if name not in self._layer_names]
        if unknown:
            hints = []
            for name in unknown:
                close = difflib.get_close_matches(name, sorted(self._layer_names), n=3)
                hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
                hints.append(f"{name!r}{hint}")
            raise UnknownLayerError(
                f"{', '.join(hints)} {'is not a layer' if len(unknown) == 1 else 'are not layers'} "
                f"of {type(self._model).__name__}. Valid names are those of "
                "model.named_modules(), listed in explorer.layer_names."
            )
        return list(dict.fromkeys(names))


class UnknownLayerError(ValueError, traitlets.TraitError):
    """A layer name that is not a module of the explored model."""


def _check_inputs(inputs: object) -> torch.Tensor | None:
    if inputs is None:
        return None
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
