"""The Compare widget: a grid of relevance maps, rows = inputs, columns = rule configurations.

All columns share one :class:`lrp_core.live.LiveExplanation` (one forward pass) held by a
:class:`~lrp_widgets.compare._session.CompareSession`; each column owns its own rule assignment
and is computed by one backward pass, so changing a column re-runs only that column. Drawing,
normalisation, differences, sorting and hovering live in the front end (``js/src/compare.ts``);
``to_figure``/``save`` draw the same grid with matplotlib. Every action of the page is also a
method here, so a notebook can drive and read the widget.

Page commands (``{"type": ..., "request": n, ...}``, see :mod:`lrp_widgets._base`; columns are
named by their stable ``id``):

- ``add_column``: ``preset`` (a preset name or ``"Gradient"``) or ``config`` (JSON text), and
  optionally ``name`` and ``index``;
- ``remove_column``: ``id``;  ``move_column``: ``id``, ``index``;
- ``set_params``: ``id``, ``params`` (the column's composite parameters);
- ``set_layer_params``: ``id``, ``layer``, ``params``, optional ``rule`` (a registered name);
- ``compute_scores``: ``names`` (long scores; default all). It starts a background thread and is
  answered at once; ``progress`` follows the work and returns to ``{}`` when it ends;
- ``cancel`` (no request number needed): stops ``compute_scores`` after its current step.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
import traitlets
from torch import nn

from lrp_core.cmap import CMAPS
from lrp_core.composites import COMPOSITES
from lrp_core.core import Hook
from lrp_widgets._base import command, command_params, load_bundle
from lrp_widgets._payload import (
    display_images,
    encode_array,
    heatmap_message,
    palettes,
    rule_catalog,
    top_predictions,
)
from lrp_widgets.compare._columns import (
    assign_rule,
    column_entry,
    column_json,
    set_layer_params,
    with_composite_params,
)
from lrp_widgets.compare._configs import ColumnSpec, column_error, read_config
from lrp_widgets.compare._inputs import (
    check_masks,
    check_model,
    image_inputs,
    open_live,
    read_specs,
    shared_canonizers,
)
from lrp_widgets.compare._runner import ScoreEvents, ScoreRunner
from lrp_widgets.compare._scores import SCORE_INFO, long_score_names
from lrp_widgets.compare._session import CompareSession
from lrp_widgets.compare._traits import CompareTraits

__all__ = ["Compare"]

DEFAULT_CONFIGS = ("EpsilonPlusFlat", "EpsilonGammaBox", "EpsilonAlpha2Beta1Flat", None)


class Compare(CompareTraits):
    """Side-by-side LRP explanations of a batch under several rule configurations.

    Parameters
    ----------
    model : torch.nn.Module
        The network (output ``[N, classes]``); it runs forward once for all columns.
    inputs : torch.Tensor
        Images ``[N, C, H, W]``, the rows of the grid.
    configs : mapping or iterable, optional
        Name -> configuration, a sequence of configurations (names derived), or None
        (EpsilonPlusFlat, EpsilonGammaBox, EpsilonAlpha2Beta1Flat, plain gradient). A
        configuration is a preset name, a ``Composite``, a JSON string or dict in the
        ``lrp_core.config`` format, an ``Explorer`` (its current config) or None (gradient).
    canonizers : list, optional
        Canonizers shared by all columns (default: those the first configuration that carries
        canonizers asks for, else none).
    target : int, optional
        The class explained in every row; None: each row's predicted class.
    masks : torch.Tensor, optional
        Ground truth ``[N, H, W]`` (bool or 0/1) enabling the localisation scores.
    class_names : iterable of str, optional
        Names of the output classes, for row labels.

    Raises
    ------
    TypeError
        ``model`` is not a module, ``inputs``/``masks`` not tensors, a bad config type.
    ValueError
        Wrong shapes, an out-of-range target, a bad configuration (``ColumnError`` naming the
        column and the field).

    Notes
    -----
    ``assign`` and ``set_params`` take the arguments of
    :meth:`lrp_core.live.LiveExplanation.assign` / ``set_params`` in the same places, plus the
    keyword ``column`` that says which column's rules change.

    Examples
    --------
    >>> grid = Compare(model, images, ["EpsilonPlusFlat", "EpsilonGammaBox"],
    ...                canonizers=demo_canonizers(), masks=masks)
    >>> grid.set_composite_params("EpsilonGammaBox", gamma=0.5)
    >>> grid.save("grid.png")
    """

    def __init__(
        self,
        model: nn.Module,
        inputs: torch.Tensor,
        configs: Mapping[str, Any] | Iterable[Any] | None = None,
        *,
        canonizers: list | None = None,
        target: int | None = None,
        masks: torch.Tensor | None = None,
        class_names: Iterable[str] | None = None,
    ) -> None:
        check_model(model)
        inputs = image_inputs(inputs)
        masks = check_masks(masks, inputs)
        self._value_range = (float(inputs.min()), float(inputs.max()))
        specs = read_specs(DEFAULT_CONFIGS if configs is None else configs, self._value_range)
        canonizers = shared_canonizers(canonizers, specs)
        bundle = load_bundle("compare")
        self._live = open_live(model, inputs, canonizers, len(specs))
        try:
            self._session = self._open_session(specs, target, masks)
            super().__init__(bundle)
        except BaseException:
            self._live.close()
            raise
        self._publish_inputs(inputs, class_names)
        self._publish()

    def _open_session(
        self, specs: list[tuple[str | None, ColumnSpec]], target: Any, masks: Any
    ) -> CompareSession:
        """The session over ``self._live`` with one computed column per spec, and its runner."""
        session = CompareSession(self._live, target, masks)
        for label, spec in specs:
            session.add(spec, label or spec.name, None)
        progress = lambda message: self.set_trait("progress", message)  # noqa: E731
        events = ScoreEvents(self._score_state, self._show_error, progress, self._publish)
        self._runner = ScoreRunner(session, events)
        return session

    def _publish_inputs(self, inputs: torch.Tensor, class_names: Iterable[str] | None) -> None:
        """Set the traits that stay: presets, rules, palettes, images, masks, classes."""
        session = self._session
        self.set_trait("presets", [*sorted(COMPOSITES), "Gradient"])
        self.set_trait("catalog", rule_catalog(self._value_range))
        self.set_trait("palettes", palettes())
        self.set_trait("images", encode_array(display_images(inputs)))
        masks = session.masks
        self.set_trait("masks", {} if masks is None else encode_array(masks.to(torch.uint8)))
        self.set_trait("score_info", SCORE_INFO)
        names = list(class_names) if class_names is not None else []
        self.class_names = names or [str(i) for i in range(session.num_classes)]
        self.predictions = [row[0] for row in top_predictions(self._live.output, 1)]
        self.classes = session.classes()

    # --- reading ---
    @property
    def column_names(self) -> list[str]:
        """Column names in display order."""
        return self._session.names

    def column_config(self, name: str) -> str:
        """The column's configuration as JSON (``lrp_core.config`` format)."""
        return column_json(self._session.column(name))

    def relevance(self, name: str) -> torch.Tensor:
        """The column's relevance ``[N, C, H, W]`` (a copy)."""
        return self._session.column(name).result.relevance.detach().clone()

    # --- columns ---
    def add_column(self, config: Any, name: str | None = None, index: int | None = None) -> str:
        """Add a column (any configuration ``Compare`` accepts) at ``index`` (default: the end);
        returns its unique name (``"X"``, ``"X (2)"``...)."""
        return self._add_column(config, name, index, request=0)

    def remove_column(self, name: str) -> None:
        """Remove the column ``name`` (its scores and curves go with it)."""
        column = self._guard(lambda: self._session.remove(name))
        if self.reference == column.id:
            self.reference = -1
        self._publish(ok=True)

    def move_column(self, name: str, index: int) -> None:
        """Move the column ``name`` to position ``index`` (0 = first)."""
        self._guard(lambda: self._session.move(name, index))
        self._publish(ok=True)

    def set_composite_params(self, column: str, **params: Any) -> None:
        """Change the composite parameters of ``column`` (e.g. ``epsilon=0.1, gamma=0.5``) and
        recompute that column only."""
        self._set_composite_params(column, params, request=0)

    # --- one column's rules: LiveExplanation's arguments plus ``column`` ---
    def assign(
        self,
        rule: Hook | str | None,
        *,
        name: str | None = None,
        type: str | type | None = None,
        within: str | None = None,
        column: str,
        **params: Any,
    ) -> None:
        """Override the rule of layer ``name``, or of the leaves of ``type`` and/or ``within``,
        in ``column`` only, and recompute that column; ``rule``, ``name``, ``type``, ``within``
        and ``params`` as in :meth:`lrp_core.live.LiveExplanation.assign`.

        Raises
        ------
        ColumnError
            Unknown column, layer, rule or parameter, or a rule that cannot apply; nothing
            changes then.
        """
        target = {"name": name, "type": type, "within": within}
        self._assign(column, rule, target, params, request=0)

    def set_params(self, name: str, *, column: str, **params: Any) -> None:
        """Change parameters of layer ``name``'s effective rule in ``column`` (e.g.
        ``epsilon=0.5``) and recompute that column; ``name`` and ``params`` as in
        :meth:`lrp_core.live.LiveExplanation.set_params`.

        Raises
        ------
        ColumnError
            Unknown column, layer or parameter, a rejected value, or the plain gradient.
        """
        self._set_params(column, name, params, request=0)

    # --- long scores ---
    def compute_scores(
        self, names: Iterable[str] | None = None, progress: Any = None
    ) -> dict[str, Any]:
        """Compute the long scores (``faithfulness``, ``class_sensitivity``; default both) of every
        column, synchronously; returns the ``scores`` dict.

        ``progress``: True prints a progress line; a callable gets ``(done, total)`` and may
        return False to stop. ``cancel()`` (e.g. from a callback) or KeyboardInterrupt stop it
        between steps; columns finished before stay scored.
        """
        self._runner.run(self._guard(lambda: long_score_names(names)), progress)
        return self.scores

    def cancel(self) -> None:
        """Stop a running ``compute_scores`` after its current step."""
        self._runner.cancel()

    # --- export ---
    def to_figure(self, **kwargs: Any):
        """The grid as a matplotlib ``Figure``: keywords ``normalization``, ``scale_by``,
        ``cmap``, ``reference``, ``show`` (default: the traits), ``show_inputs``, ``figsize``.

        Each group's (grid, row or cell) colour scale ±s is the 99th percentile of its
        ``|values|`` (``scale_by="percentile"``) or their maximum (``"max"``), as on the page;
        see ``lrp_widgets.compare._figure``."""
        from lrp_widgets.compare._figure import compare_figure

        with self._session.locked():
            return compare_figure(self, self._session.columns, **kwargs)

    def save(self, path: str | Path, dpi: int = 100, **kwargs: Any) -> Path:
        """Write the grid (``to_figure(**kwargs)``) as a PNG file; returns the path."""
        path = Path(path)
        self.to_figure(**kwargs).savefig(path, dpi=dpi, format="png")
        return path

    def close(self) -> None:
        """Stop score computations, close the widget and the live explanation (hooks removed,
        canonizers undone, model as before)."""
        runner = getattr(self, "_runner", None)
        if runner is not None:
            runner.stop()
        super().close()

    # --- page commands ---
    @command("add_column")
    def _add_column_command(self, content: dict, request: int) -> None:
        config = content.get("config") if "config" in content else content.get("preset")
        if config is None and "preset" not in content:
            raise ValueError("add_column needs 'preset' (a preset name) or 'config' (JSON text)")
        self._add_column(config, content.get("name") or None, content.get("index"), request)

    @command("remove_column")
    def _remove_column_command(self, content: dict, request: int) -> None:
        self.remove_column(self._session.column_by_id(content.get("id")).name)

    @command("move_column")
    def _move_column_command(self, content: dict, request: int) -> None:
        column = self._session.column_by_id(content.get("id"))
        self.move_column(column.name, content.get("index"))

    @command("set_params")
    def _set_params_command(self, content: dict, request: int) -> None:
        column = self._session.column_by_id(content.get("id"))
        self._set_composite_params(column.name, command_params(content), request)

    @command("set_layer_params")
    def _set_layer_params_command(self, content: dict, request: int) -> None:
        column = self._session.column_by_id(content.get("id"))
        layer = content.get("layer")
        if not isinstance(layer, str):
            raise TypeError(f"set_layer_params needs 'layer', a module name, got {layer!r}")
        rule, params = content.get("rule") or None, command_params(content)
        if rule is None:
            self._set_params(column.name, layer, params, request)
        else:
            self._assign(column.name, rule, {"name": layer}, params, request)

    @command("compute_scores")
    def _compute_scores_command(self, content: dict, request: int) -> None:
        self._runner.start(self._guard(lambda: long_score_names(content.get("names"))))

    @command("cancel")
    def _cancel_command(self, content: dict, request: int) -> None:
        self.cancel()

    # --- internals ---
    def _add_column(self, config: Any, name: str | None, index: Any, request: int) -> str:
        label = name or (config if isinstance(config, str) and "{" not in config else "column")
        try:
            spec = read_config(config, self._value_range)
        except (ValueError, TypeError) as error:
            raise self._show_error(column_error(label, error)) from None
        column = self._guard(lambda: self._session.add(spec, name or spec.name, index, request))
        self._publish(ok=True)
        return column.name

    def _change(self, name: str, change: Any, request: int) -> None:
        """Apply ``change(column)`` to the column ``name`` and recompute it (see
        :meth:`CompareSession.change`); errors are shown and raised."""
        session = self._session
        column = self._guard(lambda: session.column(name))
        self._guard(lambda: session.change(column, lambda: change(column), request))
        self._publish(ok=True)

    def _set_composite_params(self, name: str, params: dict, request: int) -> None:
        live = self._live
        self._change(name, lambda column: with_composite_params(column, live, params), request)

    def _assign(self, name: str, rule: Any, target: dict, params: dict, request: int) -> None:
        change = lambda column: assign_rule(column, self._live, rule, target, params)  # noqa: E731
        self._change(name, change, request)

    def _set_params(self, name: str, layer: str, params: dict, request: int) -> None:
        live = self._live
        self._change(name, lambda column: set_layer_params(column, live, layer, params), request)

    def _score_state(self, status: str, error: str | None) -> None:
        if error is not None:
            self.error = error
        self.status = status

    def _publish(self, ok: bool = False) -> None:
        """Send columns, heatmaps and scores to the page; ``ok``: after a successful change,
        clear the error (status back to ready, or computing while scores run)."""
        session = self._session
        with session.locked():  # a score thread never sends an older state last
            columns = session.columns
            heatmaps = {
                str(c.id): heatmap_message(c.result.relevance, c.generation, c.request)
                for c in columns
            }
            ids = [column.id for column in columns]
            self.compute_count = session.backward_count
            self.columns = [column_entry(column) for column in columns]
            self.heatmaps = heatmaps
            self.scores = session.scores.message(ids)
            self.curves = session.scores.curves_message(ids)
            if ok:
                self.error = ""
                self.status = "computing" if self._runner.busy else "ready"

    @traitlets.validate("cmap")
    def _validate_cmap(self, proposal: dict[str, Any]) -> str:
        if proposal["value"] not in CMAPS:
            raise traitlets.TraitError(
                f"unknown colormap {proposal['value']!r}; choose one of {sorted(CMAPS)}"
            )
        return proposal["value"]
