"""The Compare widget: a grid of relevance maps, rows = inputs, columns = rule configurations.

All columns share one :class:`lrp_core.live.LiveExplanation` (one forward pass); each column owns
its own rule assignment and is computed by one backward pass, so changing a column re-runs only
that column. Drawing, normalisation, differences, sorting and hovering live in the front end
(``js/src/compare.ts``); ``to_figure``/``save`` draw the same grid with matplotlib. Every action of
the page is also a method here, so a notebook can drive and read the widget.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import anywidget
import torch
import traitlets
from torch import nn

from lrp_core.cmap import CMAPS
from lrp_core.composites import COMPOSITES
from lrp_core.live import LiveExplanation
from lrp_widgets._compare_columns import (
    Column,
    ColumnError,
    build_column,
    column_entry,
    column_error,
    column_json,
    read_config,
    set_layer_rule,
    unique_name,
    with_composite_params,
)
from lrp_widgets._compare_commands import handle_command
from lrp_widgets._compare_inputs import (
    check_masks,
    check_model,
    check_target,
    image_inputs,
    open_live,
    read_specs,
    shared_canonizers,
)
from lrp_widgets._compare_runner import ScoreRunner
from lrp_widgets._compare_scores import SCORE_INFO, ScoreTable, cheap_scores, long_score_names
from lrp_widgets._static import bundle_text
from lrp_widgets._transport import (
    display_images,
    encode_array,
    heatmap_array,
    palettes,
    rule_catalog,
    top_predictions,
)

__all__ = ["Compare", "ColumnError"]

STATUSES = ("ready", "computing", "error")
DEFAULT_CONFIGS = ("EpsilonPlusFlat", "EpsilonGammaBox", "EpsilonAlpha2Beta1Flat", None)


class Compare(anywidget.AnyWidget):
    """Side-by-side LRP explanations of a batch under several rule configurations.

    Args:
        model: the network (output ``[N, classes]``); it runs forward once for all columns.
        inputs: images ``[N, C, H, W]``, the rows of the grid.
        configs: name -> configuration, a sequence of configurations (names derived), or None
            (EpsilonPlusFlat, EpsilonGammaBox, EpsilonAlpha2Beta1Flat, plain gradient). A
            configuration is a preset name, a ``Composite``, a JSON string or dict in the
            ``lrp_core.config`` format, an ``Explorer`` (its current config) or None (gradient).
        canonizers: canonizers shared by all columns (default: those the first configuration
            that carries canonizers asks for, else none).
        target: the class explained in every row; None: each row's predicted class.
        masks: ground truth ``[N, H, W]`` (bool or 0/1) enabling the localisation scores.
        class_names: names of the output classes, for row labels.

    Display traits (set by the page or from Python; ``to_figure`` uses them): ``normalization``
    (one colour scale for the ``"grid"``, each ``"row"`` or each ``"cell"``), ``scale_by`` (that
    scale is the ``"percentile"``, the 99th percentile of ``|value|`` over the group, default,
    larger values clipped to the end colours; or the ``"max"``), ``reference``, ``cmap``,
    ``show``, ``sort``.

    Raises:
        TypeError: ``model`` is not a module, ``inputs``/``masks`` not tensors, a bad config type.
        ValueError: wrong shapes, an out-of-range target, a bad configuration (``ColumnError``
            naming the column and the field).

    Example:
        >>> grid = Compare(model, images, ["EpsilonPlusFlat", "EpsilonGammaBox"],
        ...                canonizers=demo_canonizers(), masks=masks)
        >>> grid.set_params("EpsilonGammaBox", gamma=0.5)
        >>> grid.save("grid.png")
    """

    _esm = traitlets.Unicode().tag(sync=True)
    _css = traitlets.Unicode().tag(sync=True)
    columns = traitlets.List(traitlets.Dict(), help="Columns in display order.").tag(sync=True)
    presets = traitlets.List(traitlets.Unicode(), read_only=True).tag(sync=True)
    catalog = traitlets.Dict(read_only=True, help="Rules by name with defaults.").tag(sync=True)
    palettes = traitlets.Dict(read_only=True, help="Colormaps: name -> 768 RGB bytes.").tag(
        sync=True
    )
    images = traitlets.Dict(read_only=True, help="Inputs as uint8 [N, H, W, 3].").tag(sync=True)
    masks = traitlets.Dict(read_only=True, help="Masks as uint8 [N, H, W]; {} if none.").tag(
        sync=True
    )
    heatmaps = traitlets.Dict(help="str(column id) -> float32 [N, C, H, W] message.").tag(sync=True)
    classes = traitlets.List(traitlets.Int(), help="Class explained per row.").tag(sync=True)
    class_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    predictions = traitlets.List(help="Per row [class, probability] of the top class.").tag(
        sync=True
    )
    scores = traitlets.Dict(help="score -> str(column id) -> N values (None: undefined).").tag(
        sync=True
    )
    score_info = traitlets.Dict(read_only=True).tag(sync=True)
    curves = traitlets.Dict(help="str(column id) -> MoRF/LeRF curves after compute_scores.").tag(
        sync=True
    )
    progress = traitlets.Dict(help="{task, done, total} of a long computation; {} when idle.").tag(
        sync=True
    )
    normalization = traitlets.Enum(
        ("grid", "row", "cell"),
        default_value="grid",
        help="Colour scale per grid, row or cell (page-owned).",
    ).tag(sync=True)
    scale_by = traitlets.Enum(
        ("percentile", "max"),
        default_value="percentile",
        help="Colour scale s of a group: 99th percentile or max of |value| (page-owned).",
    ).tag(sync=True)
    reference = traitlets.Int(-1, help="Column id of the difference reference; -1: none.").tag(
        sync=True
    )
    cmap = traitlets.Unicode("bwr", help="Colormap name of lrp_core.cmap.CMAPS.").tag(sync=True)
    show = traitlets.Enum(("heatmap", "overlay"), default_value="heatmap").tag(sync=True)
    sort = traitlets.Dict(help="{score, column, descending} or {} (page-owned).").tag(sync=True)
    status = traitlets.Enum(STATUSES, default_value="ready").tag(sync=True)
    error = traitlets.Unicode("", help="Message of the last error, '' if none.").tag(sync=True)
    compute_count = traitlets.Int(0, help="Backward passes run so far.").tag(sync=True)
    answered = traitlets.Int(0, help="Last front-end request handled.").tag(sync=True)

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
        self._masks = check_masks(masks, inputs)
        self._value_range = (float(inputs.min()), float(inputs.max()))
        specs = read_specs(DEFAULT_CONFIGS if configs is None else configs, self._value_range)
        canonizers = shared_canonizers(canonizers, specs)
        esm, css = bundle_text("compare.js"), bundle_text("compare.css")
        self._lock = threading.RLock()
        self._columns: list[Column] = []
        self._next_id = 0
        self._backward_count = 0
        self._request = 0  # number of the page request being handled (0: from Python)
        self._scores = ScoreTable(with_masks=self._masks is not None)
        self._live = open_live(model, inputs, canonizers, len(specs))
        try:
            self._model = model
            output = self._live.output
            if output.ndim != 2:
                raise ValueError(f"the model must return [N, classes], got {tuple(output.shape)}")
            self._num_classes = int(output.shape[1])
            self._target = check_target(target, self._num_classes)
            for label, spec in specs:
                self._add(spec, label or spec.name, len(self._columns))
            self._runner = ScoreRunner(self)
            super().__init__(_esm=esm, _css=css)
        except BaseException:
            self._live.close()
            raise
        catalog = rule_catalog()
        for bound, value in zip(("low", "high"), self._value_range, strict=True):
            if catalog.get("ZBox", {}).get("params", {}).get(bound, 0) is None:
                catalog["ZBox"]["params"][bound] = value  # offer the batch's value range
        self.set_trait("presets", [*sorted(COMPOSITES), "Gradient"])
        self.set_trait("catalog", catalog)
        self.set_trait("palettes", palettes())
        self.set_trait("images", encode_array(display_images(inputs)))
        mask_message = {} if self._masks is None else encode_array(self._masks.to(torch.uint8))
        self.set_trait("masks", mask_message)
        self.set_trait("score_info", SCORE_INFO)
        names = list(class_names) if class_names is not None else []
        self.class_names = names or [str(i) for i in range(self._num_classes)]
        self.predictions = [row[0] for row in top_predictions(output, 1)]
        self.classes = self._classes()
        self._publish()
        self.on_msg(self._on_message)

    # --- reading ---
    @property
    def live(self) -> LiveExplanation:
        """The live explanation all columns share (one forward pass)."""
        return self._live

    @property
    def model(self) -> nn.Module:
        """The model being explained (the object that was passed in)."""
        return self._model

    @property
    def column_names(self) -> list[str]:
        """Column names in display order."""
        return [column.name for column in self._columns]

    def column_config(self, name: str) -> str:
        """The column's configuration as JSON (``lrp_core.config`` format)."""
        return column_json(self._column(name))

    def relevance(self, name: str) -> torch.Tensor:
        """The column's relevance ``[N, C, H, W]`` (a copy)."""
        return self._column(name).result.relevance.detach().clone()

    # --- column commands ---
    def add_column(self, config: Any, name: str | None = None, index: int | None = None) -> str:
        """Add a column (any configuration ``Compare`` accepts) at ``index`` (default: the end);
        returns its unique name (``"X"``, ``"X (2)"``...)."""
        label = name or (config if isinstance(config, str) and "{" not in config else "column")
        try:
            spec = read_config(config, self._value_range)
        except (ValueError, TypeError) as error:
            raise self._failed(column_error(label, error)) from None
        end = len(self._columns)
        position = end if index is None else self._guard(lambda: self._index(index, extra=1))
        with self._lock:
            column = self._guard(lambda: self._add(spec, name or spec.name, position))
        self._publish(ok=True)
        return column.name

    def remove_column(self, name: str) -> None:
        """Remove the column ``name`` (its scores and curves go with it)."""
        with self._lock:
            column = self._guard(lambda: self._column(name))
            self._columns.remove(column)
            self._scores.drop(column.id)
        if self.reference == column.id:
            self.reference = -1
        self._publish(ok=True)

    def move_column(self, name: str, index: int) -> None:
        """Move the column ``name`` to position ``index`` (0 = first)."""
        with self._lock:
            column = self._guard(lambda: self._column(name))
            position = self._guard(lambda: self._index(index))
            self._columns.remove(column)
            self._columns.insert(position, column)
        self._publish(ok=True)

    def set_params(self, name: str, **params: Any) -> None:
        """Change the column's composite parameters (e.g. ``epsilon=0.1, gamma=0.5``) and
        recompute that column only."""
        column = self._guard(lambda: self._column(name))
        self._change(column, lambda: with_composite_params(column, self._live, params))

    def set_layer_params(
        self, name: str, layer: str, rule: str | None = None, **params: Any
    ) -> None:
        """Override one layer of the column: ``rule`` (a registered rule name) with ``params``,
        or without ``rule`` the layer's current rule with ``params`` changed."""
        column = self._guard(lambda: self._column(name))
        self._change(column, lambda: set_layer_rule(column, self._live, layer, rule, params))

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
        self._runner.run(self._score_names(names), progress)
        return self.scores

    def cancel(self) -> None:
        """Stop a running ``compute_scores`` after its current step."""
        self._runner.cancel()

    # --- export ---
    def to_figure(self, **kwargs: Any):
        """The grid as a matplotlib ``Figure``: keywords ``normalization``, ``scale_by``,
        ``cmap``, ``reference``, ``show`` (default: the traits), ``show_inputs``, ``figsize``; see
        ``lrp_widgets._compare_figure.compare_figure``.

        Each group's (grid, row or cell, by ``normalization``) colour scale ±s is the 99th
        percentile of its ``|values|`` (``scale_by="percentile"``, larger values take the end
        colours) or their maximum (``"max"``), the same as the page."""
        from lrp_widgets._compare_figure import compare_figure

        with self._lock:
            return compare_figure(self, **kwargs)

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
        live = getattr(self, "_live", None)
        if live is not None:
            live.close()
        super().close()

    # --- internals ---
    def _column(self, name: str) -> Column:
        for column in self._columns:
            if column.name == name:
                return column
        raise ColumnError(f"there is no column {name!r}; columns: {self.column_names}")

    def _column_by_id(self, column_id: Any) -> Column:
        for column in self._columns:
            if column.id == column_id:
                return column
        ids = [column.id for column in self._columns]
        raise ColumnError(f"there is no column with id {column_id!r}; ids: {ids}")

    def _index(self, index: Any, extra: int = 0) -> int:
        size = len(self._columns) + extra
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < size:
            raise ColumnError(f"column index must be an int in 0..{size - 1}, got {index!r}")
        return index

    def _score_names(self, names: Iterable[str] | None) -> list[str]:
        return self._guard(lambda: long_score_names(names))

    def _add(self, spec, name: str, position: int) -> Column:
        name = unique_name(name, set(self.column_names))
        column = build_column(self._next_id, name, spec, self._live)
        self._compute(column)
        self._next_id += 1
        self._columns.insert(position, column)
        cache = self._live._cache  # one cached set of terms per column (see TermCache)
        cache.size = max(cache.size, len(self._columns) + 1)
        return column

    def _compute(self, column: Column) -> None:
        with self._lock:
            generation = self._live.request()
            result = self._live.explain(
                self._target, assignment=column.assignment, generation=generation
            )
            column.result, column.generation = result, generation
            column.request = self._request
            self._scores.set_cheap(column.id, cheap_scores(result, self._masks))
            self._backward_count += 1

    def _change(self, column: Column, change) -> None:
        assignment = column.assignment
        saved = (dict(assignment.defaults), list(assignment.overrides))
        state = (column.composite, column.composite_params)
        with self._lock:
            try:
                change()
                self._compute(column)
            except Exception as error:
                assignment.replace(*saved)
                column.composite, column.composite_params = state
                raise self._failed(error) from None
        self._publish(ok=True)

    def _guard(self, action):
        try:
            return action()
        except Exception as error:
            raise self._failed(error) from None

    def _failed(self, error: Exception) -> Exception:
        self.error = f"{type(error).__name__}: {error}"
        self.status = "error"
        return error

    def _classes(self) -> list[int]:
        if self._target is not None:
            return [self._target] * self._live.output.shape[0]
        return self._live.output.argmax(1).tolist()

    def _publish(self, ok: bool = False) -> None:
        """Send columns, heatmaps and scores to the page; ``ok``: after a successful change,
        clear the error (status back to ready, or computing while scores run)."""
        with self._lock:
            columns = list(self._columns)
            heatmaps = {}
            for column in columns:
                message = encode_array(heatmap_array(column.result.relevance))
                message.update(generation=column.generation, request=column.request)
                heatmaps[str(column.id)] = message
            ids = [column.id for column in columns]
            # set while holding the lock, so a score thread never sends an older state last
            self.compute_count = self._backward_count
            self.columns = [column_entry(column) for column in columns]
            self.heatmaps = heatmaps
            self.scores = self._scores.message(ids)
            self.curves = self._scores.curves_message(ids)
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

    def _on_message(self, widget: Any, content: Any, buffers: list) -> None:
        handle_command(self, content)
