"""The Explorer widget: a model's layer tree, per-layer LRP rules tuned live, relevance overlays.

The Python side holds validated traits and a few commands, all delegated to one
:class:`lrp_core.live.LiveExplanation` (one forward pass, backward-only re-runs); drawing,
colormaps, normalisation and hovering live in the front end (``js/src/explorer.ts``). Every
action of the page is also a method or trait here, so a notebook can drive and read the widget.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import anywidget
import torch
import traitlets
from torch import nn

from lrp_core.composites import COMPOSITES
from lrp_core.core import Composite, Hook
from lrp_core.live import LiveExplanation
from lrp_widgets._checks import (
    UnknownLayerError,
    check_inputs,
    check_layer_names,
    composite_key,
)
from lrp_widgets._commands import handle_command
from lrp_widgets._static import bundle_text
from lrp_widgets._transport import (
    display_images,
    encode_array,
    health_entries,
    heatmap_array,
    layer_map_message,
    layer_rows,
    palettes,
    rule_catalog,
    rule_states,
    top_predictions,
)

__all__ = ["Explorer", "UnknownLayerError", "composite_key"]

STATUSES = ("ready", "computing", "error")
DEFAULT_COMPOSITE = "EpsilonPlusFlat"
#: relative tolerance above which the health panel marks a layer as breaking conservation
HEALTH_TOLERANCE = 1e-2
TOP_K = 5


class Explorer(anywidget.AnyWidget):
    """Interactive LRP explanation of a PyTorch model's predictions.

    Args:
        model: the network (output ``[N, classes]``); it runs forward once.
        inputs: the batch to explain, ``[N, ...]`` (images ``[N, C, H, W]`` get thumbnails).
        composite: a composite preset name (``"EpsilonPlusFlat"`` or ``"epsilon_plus_flat"``),
            a ``Composite`` instance, or None (plain gradient until rules are assigned).
        canonizers: canonizers applied while the widget lives (default: the composite's).
        target: class index explained for every sample; None: each sample's predicted class.
        class_names: names of the output classes, for the target picker.

    Raises:
        TypeError: ``model`` is not an ``nn.Module`` or ``inputs`` is not a tensor.
        ValueError: ``inputs`` is empty, or the composite name is unknown.

    Example:
        >>> explorer = Explorer(model, images, canonizers=demo_canonizers())
        >>> explorer.assign("Gamma", "features.4", gamma=0.5)
        >>> explorer.relevance.shape
        torch.Size([8, 3, 64, 64])
    """

    _esm = traitlets.Unicode().tag(sync=True)
    _css = traitlets.Unicode().tag(sync=True)

    model_name = traitlets.Unicode(read_only=True, help="Class name of the model.").tag(sync=True)
    total_params = traitlets.Int(read_only=True, help="Parameter elements.").tag(sync=True)
    layers = traitlets.List(
        traitlets.Dict(), read_only=True, help="Modules below the root; see layer_rows()."
    ).tag(sync=True)
    rules = traitlets.Dict(
        help="Effective rule of every leaf: {name: {rule, params, origin}}."
    ).tag(sync=True)
    catalog = traitlets.Dict(read_only=True, help="Rules by name with parameter defaults.").tag(
        sync=True
    )
    composites = traitlets.List(traitlets.Unicode(), read_only=True).tag(sync=True)
    composite = traitlets.Unicode("", read_only=True, help="Current composite preset.").tag(
        sync=True
    )
    palettes = traitlets.Dict(read_only=True, help="Colormaps: name -> 768 RGB bytes.").tag(
        sync=True
    )
    images = traitlets.Dict(read_only=True, help="Inputs as uint8 [N, H, W, 3].").tag(sync=True)
    heatmap = traitlets.Dict(help="Relevance float32 [N, C, H, W] with its generation.").tag(
        sync=True
    )
    predictions = traitlets.List(help="Per sample: top classes as [class, probability].").tag(
        sync=True
    )
    class_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    health = traitlets.List(help="Per layer, backward order: relevance totals and violations.").tag(
        sync=True
    )
    selected = traitlets.List(traitlets.Unicode(), help="Selected layers, in order.").tag(sync=True)
    target = traitlets.Int(None, allow_none=True, help="Class explained; None: predicted.").tag(
        sync=True
    )
    sample = traitlets.Int(0, help="Index of the sample shown.").tag(sync=True)
    focus_layer = traitlets.Unicode("", help="Leaf whose relevance map is shown; '' for none.").tag(
        sync=True
    )
    layer_map = traitlets.Dict(
        help="Channel-summed relevance at focus_layer's output, float32 [N, 1, H, W] (or "
        "[N, 1, 1, F]), with its top channels per sample; {} without a focus layer."
    ).tag(sync=True)
    status = traitlets.Enum(STATUSES, default_value="ready").tag(sync=True)
    error = traitlets.Unicode("", help="Message of the last error, '' if none.").tag(sync=True)
    compute_ms = traitlets.Float(0.0, help="Duration of the last backward pass.").tag(sync=True)
    compute_count = traitlets.Int(0, help="Relevance computations run so far.").tag(sync=True)
    answered = traitlets.Int(0, help="Last front-end request handled (done or failed).").tag(
        sync=True
    )

    def __init__(
        self,
        model: nn.Module,
        inputs: torch.Tensor,
        composite: str | Composite | None = DEFAULT_COMPOSITE,
        canonizers: list | None = None,
        target: int | None = None,
        *,
        class_names: Iterable[str] | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(
                f"Explorer(model, ...) needs a torch.nn.Module, got {type(model).__name__}. "
                "Pass the network itself, e.g. Explorer(load_model(), images)."
            )
        inputs = check_inputs(inputs)
        esm, css = bundle_text("explorer.js"), bundle_text("explorer.css")
        key = composite_key(composite) if isinstance(composite, str) else composite
        self._live = LiveExplanation(model, inputs, key, canonizers=canonizers, eval_mode=True)
        self._model = model
        description = self._live.describe()
        rows = layer_rows(description)
        self._layer_names = frozenset(row["name"] for row in rows)
        output = self._live.output
        self._classes = int(output.shape[1]) if output.ndim == 2 else 0
        names = list(class_names) if class_names is not None else []
        if not names:
            names = [str(i) for i in range(self._classes)]
        super().__init__(_esm=esm, _css=css)
        self.set_trait("model_name", type(model).__name__)
        self.set_trait("total_params", description["params"])
        self.set_trait("layers", rows)
        catalog = rule_catalog()
        for bound, value in (("low", inputs.min()), ("high", inputs.max())):
            # ZBox bounds have no default: offer the batch's value range
            if catalog.get("ZBox", {}).get("params", {}).get(bound, 0) is None:
                catalog["ZBox"]["params"][bound] = float(value)
        self.set_trait("catalog", catalog)
        self.set_trait("composites", sorted(COMPOSITES))
        self.set_trait("composite", self._live.composite_name or "")
        self.set_trait("palettes", palettes())
        self.set_trait("images", encode_array(display_images(inputs)))
        self.class_names = names
        self.predictions = top_predictions(output, TOP_K)
        self.rules = rule_states(description)
        self.target = target
        self.observe(self._on_target, names=["target", "focus_layer"])
        self.on_msg(self._on_message)
        self._recompute(raise_errors=True)

    # --- reading ---
    @property
    def model(self) -> nn.Module:
        """The model being explained (the same object that was passed in)."""
        return self._model

    @property
    def live(self) -> LiveExplanation:
        """The live explanation behind the widget (for scripting beyond these methods)."""
        return self._live

    @property
    def layer_names(self) -> list[str]:
        """Qualified names of all rows of the tree, in tree order."""
        return [row["name"] for row in self.layers]

    @property
    def relevance(self) -> torch.Tensor | None:
        """Relevance of the last successful computation, shaped like the inputs."""
        result = self._live.last_result
        return None if result is None else result.relevance.detach().clone()

    @property
    def config(self) -> str:
        """The rule assignment as JSON (see ``lrp_core.config``); assign a JSON string or a dict
        to load one (validated; on error nothing changes)."""
        return self._live.to_json()

    @config.setter
    def config(self, value: str | dict) -> None:
        self._edit(lambda: self._live.apply_config(value))
        self.set_trait("composite", self._live.composite_name or "")

    @property
    def composite_for_scripts(self) -> Composite:
        """A composite with the widget's current rules, to use in scripts with ``lrp_core``."""
        return self._live.to_composite()

    def to_code(self) -> str:
        """Python source that builds the current assignment as a composite with ``lrp_core``."""
        return self._live.to_code()

    # --- commands ---
    def select(self, names: str | Iterable[str]) -> None:
        """Select layers by qualified name (replacing the selection); ``[]`` clears it.

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

    def assign(
        self,
        rule: str | Hook | None,
        names: str | Iterable[str] | None = None,
        *,
        type: str | type | None = None,
        within: str | None = None,
        **params: Any,
    ) -> None:
        """Override the rule of layers ``names`` (default: the selection), or of every leaf of
        ``type`` (within the subtree ``within``), and recompute the relevance.

        ``rule``: a registered rule name with its ``params`` (e.g. ``"Gamma", gamma=0.5``), a
        rule instance, or None / ``"Gradient"`` (plain gradient).

        Raises:
            ValueError: unknown layer, rule or parameter, or a rule that cannot apply; the
                widget shows the message and keeps its previous rules and heatmap.
        """
        if type is not None or within is not None:
            self._edit(lambda: self._live.assign(_rule(rule), type=type, within=within, **params))
            return
        targets = self._names(self.selected if names is None else names)
        self._edit(lambda: self._assign(rule, targets, None, params))

    def set_params(self, name: str, **params: Any) -> None:
        """Change parameters of layer ``name``'s effective rule (e.g. ``epsilon=0.1``)."""
        self._names(name)
        self._edit(lambda: self._live.set_params(name, **params))

    def reset(self, names: str | Iterable[str] | None = None) -> None:
        """Back to the composite's rule for layers ``names`` (None: remove every override)."""
        if names is None:
            self._edit(self._live.clear_overrides)
            return
        targets = self._names(names)

        def change() -> None:
            for name in targets:
                if self._live.rule_of(name).origin == "override":
                    self._live.remove_override(name=name)

        self._edit(change)

    def set_composite(self, composite: str | Composite | None, keep_overrides: bool = True) -> None:
        """Take the default rules from another composite preset, keeping or clearing overrides."""
        key = composite_key(composite) if isinstance(composite, str) else composite
        self._edit(lambda: self._live.set_composite(key, keep_overrides=keep_overrides))
        self.set_trait("composite", self._live.composite_name or "")

    def close(self) -> None:
        """Close the widget and the live explanation (hooks removed, canonizers undone)."""
        live = getattr(self, "_live", None)
        if live is not None:
            live.close()
        super().close()

    # --- internals ---
    def _assign(
        self,
        rule: Any,
        names: list[str],
        type_name: str | None,
        params: dict[str, Any],
        within: str | None = None,
    ) -> None:
        """Assign ``rule`` to each of ``names`` (leaves by name, other modules as subtrees), or
        with ``type_name`` to every leaf of that class name (in the subtree ``within``)."""
        rule = _rule(rule)
        if type_name:
            self._live.assign(rule, type=type_name, within=within or None, **params)
            return
        leaves = {row["name"] for row in self.layers if row["leaf"]}
        for name in names:
            if name in leaves:
                self._live.assign(rule, name=name, **params)
            else:
                self._live.assign(rule, within=name, **params)

    def _names(self, names: str | Iterable[str]) -> list[str]:
        wanted = [names] if isinstance(names, str) else list(names)
        self._check_layers(wanted)
        return wanted

    def _check_layers(self, names: list[str]) -> None:
        check_layer_names(names, self._layer_names, type(self._model).__name__)

    def _edit(self, change, request: int | None = None, raise_errors: bool = True) -> None:
        try:
            change()
        except Exception as error:
            self._fail(error, request)
            if raise_errors:
                raise
            return
        finally:
            self.rules = rule_states(self._live.describe())
        self._recompute(request, raise_errors=raise_errors)

    def _fail(self, error: Exception, request: int | None) -> None:
        self.error = f"{type(error).__name__}: {error}"
        self.status = "error"
        if request is not None:
            self.answered = max(self.answered, request)

    def _recompute(self, request: int | None = None, raise_errors: bool = False) -> None:
        generation = self._live.request()
        self.status = "computing"
        try:
            keep = [self.focus_layer] if self.focus_layer else False
            result = self._live.explain(self.target, generation=generation, keep_tensors=keep)
        except Exception as error:
            self._fail(error, request)
            if raise_errors:
                raise
            return
        if result is None:  # superseded by a newer request
            return
        heatmap = encode_array(heatmap_array(result.relevance))
        heatmap.update(generation=generation, request=request or 0)
        classes = None if result.classes is None else result.classes.tolist()
        heatmap["classes"] = classes
        self.heatmap = heatmap
        self.health = health_entries(result, HEALTH_TOLERANCE)
        self.layer_map = layer_map_message(result, self.focus_layer, TOP_K)
        self.compute_ms = result.seconds * 1000
        self.compute_count += 1
        self.error = ""
        self.status = "ready"
        if request is not None:
            self.answered = max(self.answered, request)

    def _on_target(self, change: dict[str, Any]) -> None:
        self._recompute()

    @traitlets.validate("target")
    def _validate_target(self, proposal: dict[str, Any]) -> int | None:
        value = proposal["value"]
        if value is not None and not 0 <= value < self._classes:
            raise traitlets.TraitError(
                f"target {value} is out of range: the model has {self._classes} classes "
                f"(0..{self._classes - 1}); use None for each sample's predicted class"
            )
        return value

    @traitlets.validate("focus_layer")
    def _validate_focus_layer(self, proposal: dict[str, Any]) -> str:
        name = proposal["value"]
        if name and name not in self.rules:
            self._check_layers([name])
            raise traitlets.TraitError(
                f"focus_layer {name!r} has children; relevance maps are kept for leaf modules "
                "(those listed in explorer.rules)"
            )
        return name

    @traitlets.validate("sample")
    def _validate_sample(self, proposal: dict[str, Any]) -> int:
        n = self._live.inputs.shape[0]
        if not 0 <= proposal["value"] < n:
            raise traitlets.TraitError(f"sample must be in 0..{n - 1}, got {proposal['value']}")
        return proposal["value"]

    @traitlets.validate("selected")
    def _validate_selected(self, proposal: dict[str, Any]) -> list[str]:
        names = list(proposal["value"])
        self._check_layers(names)
        return list(dict.fromkeys(names))

    def _on_message(self, widget: Any, content: Any, buffers: list) -> None:
        handle_command(self, content)


def _rule(rule: Any) -> Any:
    return None if rule == "Gradient" else rule
