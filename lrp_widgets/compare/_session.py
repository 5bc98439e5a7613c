"""The state of a Compare grid: columns over one shared live explanation, results and scores.

:class:`CompareSession` is the one place that changes the columns. Every change and every
backward pass holds the session's lock, so the page's commands (on the comm thread), the long
scores (on a background thread) and Python calls interleave safely. It knows nothing about
traits: the widget reads its state and publishes it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from lrp_core.live import LiveExplanation, RuleAssignment
from lrp_widgets.compare._columns import Column, build_column, unique_name
from lrp_widgets.compare._configs import ColumnError, ColumnSpec
from lrp_widgets.compare._inputs import check_target
from lrp_widgets.compare._scores import ScoreTable, cheap_scores

__all__ = ["CompareSession"]


class CompareSession:
    """Columns of rule configurations explained on one live explanation (one forward pass).

    Parameters
    ----------
    live : LiveExplanation
        The shared live explanation (canonizers applied, no composite of its own); the session
        owns it and closes it in :meth:`close`.
    target : int or None
        The class explained in every row; None: each row's predicted class.
    masks : torch.Tensor or None
        Boolean ground-truth masks ``[N, H, W]`` enabling the localisation scores.

    Raises
    ------
    ValueError
        The model's output is not ``[N, classes]``, or ``target`` is not one of its classes.
    """

    def __init__(
        self, live: LiveExplanation, target: int | None, masks: torch.Tensor | None
    ) -> None:
        output = live.output
        if output.ndim != 2:
            raise ValueError(f"the model must return [N, classes], got {tuple(output.shape)}")
        self.live = live
        self.target = check_target(target, int(output.shape[1]))
        self.masks = masks
        self.num_classes = int(output.shape[1])
        self.backward_count = 0
        self.scores = ScoreTable(with_masks=masks is not None)
        self._lock = threading.RLock()
        self._columns: list[Column] = []
        self._next_id = 0

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the session's lock: no column changes and no backward pass meanwhile."""
        with self._lock:
            yield

    # --- reading ---
    @property
    def columns(self) -> list[Column]:
        """The columns in display order (a new list)."""
        with self._lock:
            return list(self._columns)

    @property
    def names(self) -> list[str]:
        """Column names in display order."""
        return [column.name for column in self.columns]

    def column(self, name: str) -> Column:
        """The column called ``name``; ``ColumnError`` listing the names if there is none."""
        for column in self.columns:
            if column.name == name:
                return column
        raise ColumnError(f"there is no column {name!r}; columns: {self.names}")

    def column_by_id(self, column_id: Any) -> Column:
        """The column with the stable id ``column_id`` (the page names columns by id)."""
        columns = self.columns
        for column in columns:
            if column.id == column_id:
                return column
        ids = [column.id for column in columns]
        raise ColumnError(f"there is no column with id {column_id!r}; ids: {ids}")

    def check_index(self, index: Any, extra: int = 0) -> int:
        """``index`` if it is a position among the columns (``extra``: room for new ones)."""
        size = len(self._columns) + extra
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < size:
            raise ColumnError(f"column index must be an int in 0..{size - 1}, got {index!r}")
        return index

    def classes(self) -> list[int]:
        """The class explained in each row."""
        if self.target is not None:
            return [self.target] * self.live.output.shape[0]
        return self.live.output.argmax(1).tolist()

    # --- changing columns ---
    def add(self, spec: ColumnSpec, name: str, position: int | None, request: int = 0) -> Column:
        """Bind ``spec`` as a new column at ``position`` (None: the end) and compute it.

        ``name`` is made unique (``"X (2)"``...); ``request`` is the page request it answers.
        """
        with self._lock:
            position = len(self._columns) if position is None else self.check_index(position, 1)
            name = unique_name(name, set(self.names))
            column = build_column(self._next_id, name, spec, self.live)
            self._compute(column, request)
            self._next_id += 1
            self._columns.insert(position, column)
            # one cached set of terms per column (see lrp_core TermCache); LiveExplanation has
            # no public setter for its cache size yet
            cache = self.live._cache
            cache.size = max(cache.size, len(self._columns) + 1)
            return column

    def remove(self, name: str) -> Column:
        """Remove the column ``name`` with its scores; returns it."""
        with self._lock:
            column = self.column(name)
            self._columns.remove(column)
            self.scores.drop(column.id)
            return column

    def move(self, name: str, index: Any) -> None:
        """Move the column ``name`` to position ``index``."""
        with self._lock:
            column = self.column(name)
            position = self.check_index(index)
            self._columns.remove(column)
            self._columns.insert(position, column)

    def change(self, column: Column, change: Callable[[], None], request: int = 0) -> None:
        """Apply ``change`` to ``column``'s configuration and recompute that column only; on
        any error the column is restored and the error raised."""
        assignment = column.assignment
        saved = (dict(assignment.defaults), list(assignment.overrides))
        state = (column.composite, column.composite_params)
        with self._lock:
            try:
                change()
                self._compute(column, request)
            except Exception:
                assignment.replace(*saved)
                column.composite, column.composite_params = state
                raise

    def _compute(self, column: Column, request: int) -> None:
        with self._lock:
            generation = self.live.request()
            result = self.live.explain(
                self.target, assignment=column.assignment, generation=generation
            )
            column.result, column.generation, column.request = result, generation, request
            self.scores.set_cheap(column.id, cheap_scores(result, self.masks))
            self.backward_count += 1

    # --- what the long scores need ---
    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """The model's output on ``inputs`` (hooks stay inactive outside a backward pass)."""
        with self._lock:
            return self.live.model(inputs)

    def explain(self, assignment: RuleAssignment, classes: list[int]) -> torch.Tensor:
        """Relevance of ``classes`` (one per row) under ``assignment``."""
        with self._lock:
            generation = self.live.request()
            result = self.live.explain(classes, assignment=assignment, generation=generation)
        return result.relevance

    def store_long_score(
        self, name: str, column_id: int, generation: int, values: list, curves: Any = None
    ) -> bool:
        """Keep a long score of the column ``column_id`` if it is still at ``generation``;
        returns False (nothing kept) for a column removed or changed meanwhile."""
        with self._lock:
            current = [c for c in self._columns if c.id == column_id]
            if not current or current[0].generation != generation:
                return False
            self.scores.set_long(name, column_id, values, curves)
            return True

    def close(self) -> None:
        """Close the live explanation (hooks removed, canonizers undone, model as before)."""
        self.live.close()
