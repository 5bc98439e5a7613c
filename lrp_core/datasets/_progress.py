"""Progress of a run: a tqdm bar (a widget in a notebook) when tqdm is installed, or a callback.

A callback is called as ``progress(done, total)`` (samples, all configurations together) after
every finished batch; returning ``False`` or raising :class:`lrp_core.evaluation.Cancelled` stops
the run after that batch, which is kept: calling again resumes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lrp_core.evaluation import Cancelled

from ._errors import DatasetAttributionError

ProgressArg = bool | Callable[[int, int], Any]


class Progress:
    """Counts finished samples and reports them (see the module docstring)."""

    def __init__(self, progress: ProgressArg, total: int, done: int):
        if not (isinstance(progress, bool) or callable(progress)):
            raise DatasetAttributionError(
                f"progress must be True, False or a callable (done, total), got {progress!r}"
            )
        self.total, self.done = total, done
        self.callback = progress if callable(progress) else None
        self.bar = _tqdm(total, done) if progress is True else None

    def update(self, samples: int) -> None:
        """Count ``samples`` more; raise ``Cancelled`` when the callback says stop."""
        self.done += samples
        if self.bar is not None:
            self.bar.update(samples)
        if self.callback is not None and self.callback(self.done, self.total) is False:
            raise Cancelled(
                f"cancelled by the progress callback after {self.done} of {self.total} samples; "
                "call again with the same arguments to resume"
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _tqdm(total: int, done: int) -> Any:
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=done, unit="sample", desc="attributing")
