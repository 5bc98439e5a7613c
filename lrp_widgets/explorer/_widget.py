"""The Explorer widget: a model's layer tree, per-layer LRP rules tuned live, relevance overlays.

The Python side holds validated traits and a few commands, all delegated to one
:class:`lrp_core.live.LiveExplanation` (one forward pass, backward-only re-runs); drawing,
colormaps, normalisation and hovering live in the front end (``js/src/explorer/``). Every
action of the page is also a method or trait here, so a notebook can drive and read the widget.
(This module is longer than the project's ~400 lines: it is the one public class, whose methods
are thin documented wrappers over the live explanation; the traits are in ``_traits.py``, the
figure in ``_figure.py``, the command mechanism in ``lrp_widgets._base``.)

Page commands (``{"type": ..., "request": n, ...}``, see :mod:`lrp_widgets._base`):

- ``assign``: ``names``, ``rule`` (registered name or ``"Gradient"``), ``params``, optional
  ``scope_type`` (then every leaf of that class name gets the rule, within the subtree
  ``scope_within`` if given);
- ``reset``: ``names`` go back to the composite's rule;
- ``composite``: ``name`` of a preset, ``keep_overrides``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import torch
import traitlets
from torch import nn

from lrp_core.composites import COMPOSITES
from lrp_core.core import Composite, Hook
from lrp_core.live import LiveExplanation, covering_modules
from lrp_widgets._base import command, command_params, load_bundle
from lrp_widgets._checks import (
    TargetRangeError,
    box_defaults,
    check_class_names,
    check_inputs,
    check_layer_names,
    check_target,
    composite_key,
)
from lrp_widgets._payload import (
    display_images,
    encode_array,
    health_entries,
    heatmap_message,
    layer_map_message,
    layer_rows,
    palettes,
    rule_catalog,
    rule_states,
    top_predictions,
)
from lrp_widgets.explorer._traits import ExplorerTraits

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["Explorer"]

DEFAULT_COMPOSITE = "EpsilonPlusFlat"
#: relative tolerance above which the health panel marks a layer as breaking conservation
HEALTH_TOLERANCE = 1e-2
TOP_K = 5


class Explorer(ExplorerTraits):
    """Interactive LRP explanation of a PyTorch model's predictions.

    Parameters
    ----------
    model : torch.nn.Module
        The network (output ``[N, classes]``); it runs forward once.
    inputs : torch.Tensor
        The batch to explain, ``[N, ...]`` (images ``[N, C, H, W]`` get thumbnails).
    composite : str or Composite or None, default "EpsilonPlusFlat"
        A composite preset name (``"EpsilonPlusFlat"`` or ``"epsilon_plus_flat"``), a
        ``Composite`` instance, or None (plain gradient until rules are assigned). Presets with
        box bounds (``"EpsilonGammaBox"``) get the inputs' minimum and maximum as ``low`` and
        ``high`` (in the constructor, ``set_composite`` and the page's composite picker).
    canonizers : list, optional
        Canonizers applied while the widget lives (default: the composite's).
    target : int, optional
        Class index explained for every sample; None: each sample's predicted class.
    class_names : iterable of str, optional
        Names of the output classes, for the target picker.

    Raises
    ------
    TypeError
        ``model`` is not an ``nn.Module``, ``inputs`` is not a tensor, ``target`` is not an
        int or ``class_names`` not an iterable of strings.
    ValueError
        ``inputs`` is empty, the composite name is unknown or ``target`` is not a class of the
        model. Nothing stays applied to the model then (hooks, canonizers, training mode).

    Examples
    --------
    >>> explorer = Explorer(model, images, canonizers=demo_canonizers())
    >>> explorer.assign("Gamma", name="features.4", gamma=0.5)
    >>> explorer.relevance.shape
    torch.Size([8, 3, 64, 64])
    """

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
        target = check_target(target)
        names = check_class_names(class_names)
        bundle = load_bundle("explorer")
        key = composite_key(composite) if isinstance(composite, str) else composite
        params = box_defaults(key, {}, _value_range(inputs)) if isinstance(key, str) else {}

        def open_live() -> LiveExplanation:
            return LiveExplanation(
                model, inputs, key, composite_params=params, canonizers=canonizers, eval_mode=True
            )

        self._construct(open_live, bundle, lambda: self._build(inputs, target, names))

    def _build(self, inputs: torch.Tensor, target: int | None, names: list[str]) -> None:
        """Publish the model, the rules and the first heatmap (see ``LrpWidget._construct``)."""
        description = self._live.describe()
        rows = layer_rows(description)
        self._layer_names = frozenset(row["name"] for row in rows)
        self._children: dict[str, list[str]] = {}
        for row in rows:
            self._children.setdefault(row["parent"], []).append(row["name"])
        output = self._live.output
        self._classes = int(output.shape[1]) if output.ndim == 2 else 0
        self._publish_model(description, rows, inputs)
        self.class_names = names or [str(i) for i in range(self._classes)]
        self.predictions = top_predictions(output, TOP_K)
        self.rules = rule_states(description)
        self.target = target
        self.observe(self._on_target, names=["target", "focus_layer"])
        self._recompute(raise_errors=True)

    def _publish_model(self, description: dict, rows: list[dict], inputs: torch.Tensor) -> None:
        """Set the read-only traits that describe the model, the rules and the inputs."""
        self.set_trait("model_name", type(self._live.model).__name__)
        self.set_trait("total_params", description["params"])
        self.set_trait("layers", rows)
        self.set_trait("catalog", rule_catalog(_value_range(inputs)))
        self.set_trait("composites", sorted(COMPOSITES))
        self.set_trait("composite", self._live.composite_name or "")
        self.set_trait("palettes", palettes())
        self.set_trait("images", encode_array(display_images(inputs)))

    # --- reading ---
    @property
    def layer_names(self) -> list[str]:
        """Qualified names of all rows of the tree, in tree order."""
        return [row["name"] for row in self.layers]

    @property
    def relevance(self) -> torch.Tensor | None:
        """Relevance of the last successful computation, shaped like the inputs."""
        result = self.live.last_result
        return None if result is None else result.relevance.detach().clone()

    @property
    def config(self) -> str:
        """The rule assignment as JSON (see ``lrp_core.config``); assign a JSON string or a dict
        to load one (validated; on error nothing changes)."""
        return self.live.to_json()

    @config.setter
    def config(self, value: str | dict) -> None:
        self._edit(lambda: self.live.apply_config(value))
        self.set_trait("composite", self.live.composite_name or "")

    @property
    def composite_for_scripts(self) -> Composite:
        """A composite with the widget's current rules, to use in scripts with ``lrp_core``."""
        return self.live.to_composite()

    def to_code(self) -> str:
        """Python source that builds the current assignment as a composite with ``lrp_core``."""
        return self.live.to_code()

    # --- export ---
    def summary(self) -> str:
        """One line: the model, the composite, the sample shown and the class it explains."""
        from lrp_widgets.explorer._figure import explorer_summary

        return explorer_summary(self)

    def to_figure(
        self,
        sample: int | None = None,
        *,
        cmap: str = "bwr",
        scale_by: str = "percentile",
        figsize: tuple[float, float] | None = None,
    ) -> Figure:
        """The relevance of ``sample`` (default: the one shown) as a matplotlib ``Figure``:
        the input and the channel-summed map with a colour bar ``±s`` (``s``: the 99th
        percentile of ``|map|``, or its maximum with ``scale_by="max"``, as on the page).

        Raises
        ------
        ValueError
            no relevance computed yet, an unknown colormap or ``scale_by``, a bad sample.
        """
        from lrp_widgets.explorer._figure import explorer_figure

        sample = self.sample if sample is None else int(sample)
        return explorer_figure(self, sample, cmap=cmap, scale_by=scale_by, figsize=figsize)

    # --- editing ---
    def select(self, names: str | Iterable[str]) -> None:
        """Select layers by qualified name (replacing the selection); ``[]`` clears it.

        Raises
        ------
        TypeError
            A name is not a string.
        ValueError
            A name is not a layer of the model; the message suggests close names.
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
        rule: Hook | str | None,
        *,
        name: str | Iterable[str] | None = None,
        type: str | type | None = None,
        within: str | None = None,
        **params: Any,
    ) -> None:
        """Override the rule of the layers ``name`` (default: the selection), or of every leaf of
        ``type`` and/or within the subtree ``within``, and recompute the relevance.

        The same arguments as :meth:`lrp_core.live.LiveExplanation.assign`; ``name`` may also be
        a list of names, and a module with children gets the rule for its whole subtree.

        Parameters
        ----------
        rule : Hook or str or None
            A registered rule name with its ``params`` (e.g. ``"Gamma", gamma=0.5``), a rule
            instance, or None / ``"Gradient"`` (plain gradient).
        name : str or iterable of str, optional
            Qualified layer names; None: the selected layers (unless ``type``/``within``).
        type : str or type, optional
            Every leaf of this class (or class name).
        within : str, optional
            Only leaves inside this subtree.
        **params
            Parameters of the rule named by ``rule``.

        Raises
        ------
        ValueError
            Unknown layer, rule or parameter, or a rule that cannot apply; the widget shows the
            message and keeps its previous rules and heatmap.
        """
        if type is None and within is None:
            targets = self._names(self.selected if name is None else name)
            self._edit(lambda: self._assign_each(rule, targets, params))
            return
        if name is not None and not isinstance(name, str):
            raise self._show_error(
                TypeError(f"with type= or within=, name must be one layer name, got {name!r}")
            )
        self._edit(
            lambda: self.live.assign(_rule(rule), name=name, type=type, within=within, **params)
        )

    def set_params(self, name: str, **params: Any) -> None:
        """Change parameters of layer ``name``'s effective rule (e.g. ``epsilon=0.1``); the same
        arguments as :meth:`lrp_core.live.LiveExplanation.set_params`."""
        self._names(name)
        self._edit(lambda: self.live.set_params(name, **params))

    def reset(self, names: str | Iterable[str] | None = None) -> None:
        """Back to the composite's rule for layers ``names`` (None: remove every override)."""
        if names is None:
            self._edit(self.live.clear_overrides)
            return
        self._reset(self._names(names), request=0)

    def set_composite(self, composite: str | Composite | None, keep_overrides: bool = True) -> None:
        """Take the default rules from another composite preset, keeping or clearing overrides."""
        key = composite_key(composite) if isinstance(composite, str) else composite
        self._set_composite(key, keep_overrides, request=0)

    # --- page commands ---
    @command("assign")
    def _assign_command(self, content: dict, request: int) -> None:
        names = self._names(content.get("names", []))
        rule = content.get("rule")
        params = command_params(content)
        scope_type = content.get("scope_type") or None
        within = content.get("scope_within") or None
        if within is not None:
            self._names([within])
        if scope_type:
            change = lambda: self.live.assign(  # noqa: E731
                _rule(rule), type=scope_type, within=within, **params
            )
        else:
            change = lambda: self._assign_each(rule, names, params)  # noqa: E731
        self._edit(change, request)

    @command("reset")
    def _reset_command(self, content: dict, request: int) -> None:
        self._reset(self._names(content.get("names", [])), request)

    @command("composite")
    def _composite_command(self, content: dict, request: int) -> None:
        key = composite_key(str(content.get("name")))
        self._set_composite(key, bool(content.get("keep_overrides", True)), request)

    # --- internals ---
    def _assign_each(self, rule: Any, names: list[str], params: dict[str, Any]) -> None:
        """Assign ``rule`` to each of ``names``: leaves by name, other modules as subtrees (all
        the children of a module, e.g. a group of repeated blocks, as that module's subtree)."""
        rule = _rule(rule)
        for name in covering_modules(names, self._children):
            if name in self.rules:
                self.live.assign(rule, name=name, **params)
            else:
                self.live.assign(rule, within=name, **params)

    def _reset(self, names: list[str], request: int) -> None:
        def change() -> None:
            for name in names:
                if self.live.rule_of(name).origin == "override":
                    self.live.remove_override(name=name)

        self._edit(change, request)

    def _set_composite(self, key: str | Composite | None, keep: bool, request: int) -> None:
        """Composites with required box bounds (``low``/``high``) get the inputs' value range."""
        params = (
            box_defaults(key, {}, _value_range(self.live.inputs)) if isinstance(key, str) else {}
        )
        try:
            self._edit(lambda: self.live.set_composite(key, keep_overrides=keep, **params), request)
        finally:
            self.set_trait("composite", self.live.composite_name or "")

    def _names(self, names: str | Iterable[str]) -> list[str]:
        wanted = [names] if isinstance(names, str) else list(names)
        check_layer_names(wanted, self._layer_names, type(self.live.model).__name__)
        return wanted

    def _edit(self, change: Callable[[], Any], request: int = 0) -> None:
        """Apply ``change`` to the live explanation and recompute; errors are shown and raised
        (the live explanation has undone the change)."""
        try:
            with self.live.transaction():  # a change whose heatmap fails is undone too
                self._guard(change)
                self._recompute(request, raise_errors=True)
        finally:
            self.rules = rule_states(self.live.describe())

    def _recompute(self, request: int = 0, raise_errors: bool = False) -> None:
        generation = self.live.request()
        self.status = "computing"
        try:
            keep = [self.focus_layer] if self.focus_layer else False
            result = self.live.explain(self.target, generation=generation, keep_tensors=keep)
        except Exception as error:
            self._show_error(error)
            if raise_errors:
                raise
            return
        if result is None:  # superseded by a newer request
            return
        heatmap = heatmap_message(result.relevance, generation, request)
        heatmap["classes"] = None if result.classes is None else result.classes.tolist()
        self.heatmap = heatmap
        self.health = health_entries(result, HEALTH_TOLERANCE)
        self.layer_map = layer_map_message(result, self.focus_layer, TOP_K)
        self.compute_ms = result.seconds * 1000
        self.compute_count += 1
        self.error = ""
        self.status = "ready"
        self._answer(request)

    def _on_target(self, change: dict[str, Any]) -> None:
        self._recompute()

    @traitlets.validate("target")
    def _validate_target(self, proposal: dict[str, Any]) -> int | None:
        value = proposal["value"]
        if value is not None and not 0 <= value < self._classes:
            raise TargetRangeError(
                f"target {value} is out of range: the model has {self._classes} classes "
                f"(0..{self._classes - 1}); use None for each sample's predicted class"
            )
        return value

    @traitlets.validate("focus_layer")
    def _validate_focus_layer(self, proposal: dict[str, Any]) -> str:
        name = proposal["value"]
        if name and name not in self.rules:
            self._names([name])
            raise traitlets.TraitError(
                f"focus_layer {name!r} has children; relevance maps are kept for leaf modules "
                "(those listed in explorer.rules)"
            )
        return name

    @traitlets.validate("sample")
    def _validate_sample(self, proposal: dict[str, Any]) -> int:
        n = self.live.inputs.shape[0]
        if not 0 <= proposal["value"] < n:
            raise traitlets.TraitError(f"sample must be in 0..{n - 1}, got {proposal['value']}")
        return proposal["value"]

    @traitlets.validate("selected")
    def _validate_selected(self, proposal: dict[str, Any]) -> list[str]:
        names = list(proposal["value"])
        self._names(names)
        return list(dict.fromkeys(names))


def _rule(rule: Any) -> Any:
    return None if rule == "Gradient" else rule


def _value_range(inputs: torch.Tensor) -> tuple[float, float]:
    """(min, max) of the inputs: the default bounds of box rules."""
    return float(inputs.min()), float(inputs.max())
