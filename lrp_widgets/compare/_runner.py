"""The long scores of the Compare widget, run step by step with progress and cancellation.

From the page, ``compute_scores`` runs in a background thread (commands arrive on the kernel's
comm thread, which must not be blocked); from Python it runs in the caller's thread. Either way
the widget's ``progress`` trait follows the steps, and ``cancel()`` or a progress callback
stops the work between two steps by raising ``lrp_core.evaluation.Cancelled`` inside the score
function. Each step holds the session's lock only for one model call or one backward pass, so
column edits from the page interleave; a column changed meanwhile keeps no stale scores.

The runner works on a :class:`~lrp_widgets.compare._session.CompareSession` and tells the widget
what happens through :class:`ScoreEvents` callbacks; it never touches the widget itself.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from lrp_core.evaluation import Cancelled, EvaluationInputError
from lrp_core.live import RuleAssignment
from lrp_widgets.compare._scores import ScoreOptions, faithfulness, sensitivity
from lrp_widgets.compare._session import CompareSession


@dataclass(frozen=True)
class _Job:
    """A column as it was when the scores started."""

    id: int
    name: str
    generation: int
    assignment: RuleAssignment
    relevance: torch.Tensor


@dataclass(frozen=True)
class ScoreEvents:
    """How the runner reports to its widget.

    Attributes
    ----------
    state : callable
        ``state(status, error)``: the widget's status (``"computing"``/``"ready"``) and error
        message (``""`` for none, None: unchanged) changed.
    failed : callable
        ``failed(error)``: the computation failed with this exception.
    progress : callable
        ``progress(message)``: ``{task, done, total}``, or ``{}`` when the work ends.
    scores : callable
        ``scores()``: new scores were stored in the session.
    """

    state: Callable[[str, str | None], None]
    failed: Callable[[Exception], None]
    progress: Callable[[dict], None]
    scores: Callable[[], None]


class ScoreRunner:
    """Runs ``faithfulness`` and ``class_sensitivity`` for every column of one session.

    Parameters
    ----------
    session : CompareSession
        The columns to score.
    events : ScoreEvents
        Callbacks that tell the widget about progress, state and new scores.
    options : ScoreOptions, optional
        Sizes of the perturbation steps.
    """

    def __init__(
        self, session: CompareSession, events: ScoreEvents, options: ScoreOptions | None = None
    ):
        self.session = session
        self.events = events
        self.options = options or ScoreOptions()
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._busy = threading.Lock()

    @property
    def busy(self) -> bool:
        """Whether scores are being computed now."""
        return self._busy.locked()

    def cancel(self) -> None:
        """Ask the running computation to stop after its current step."""
        self._cancel.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel and wait for the background thread (if any) to finish."""
        self.cancel()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def start(self, names: list[str]) -> None:
        """Run in a background thread (page commands); errors go to the widget's traits."""
        if self.busy:
            raise RuntimeError("scores are already being computed; cancel them first")
        self._thread = threading.Thread(
            target=self._background, args=(names,), name="lrp-compare-scores", daemon=True
        )
        self._thread.start()

    def run(self, names: list[str], progress: Any = None) -> None:
        """Run in this thread; ``progress``: None, True (a text line) or ``f(done, total)``."""
        if progress is True:
            progress = _print_progress
        if progress is not None and not callable(progress):
            raise TypeError(f"progress must be None, True or a callable, got {progress!r}")
        self._run(names, progress)

    def _background(self, names: list[str]) -> None:
        try:
            self._run(names, None)
        except Exception as error:  # shown in the page; never raised into the comm thread
            self.events.failed(error)

    def _run(self, names: list[str], progress: Callable | None) -> None:
        if not self._busy.acquire(blocking=False):
            raise RuntimeError("scores are already being computed; cancel them first")
        events = self.events
        try:
            self._cancel.clear()
            with self.session.locked():
                jobs = [
                    _Job(c.id, c.name, c.generation, c.assignment.copy(), c.result.relevance)
                    for c in self.session.columns
                ]
            inputs = self.session.live.inputs
            steps = {
                "faithfulness": self.options.faithfulness_steps(*inputs.shape[2:]),
                "class_sensitivity": 2,
            }
            total = len(jobs) * sum(steps[name] for name in names)
            events.state("computing", "")
            done = 0
            for job in jobs:
                for name in names:
                    report = self._reporter(f"{name}: {job.name}", done, total, progress)
                    report(0, steps[name])
                    self._score(job, name, report)
                    done += steps[name]
            events.state("ready", None)
        except Cancelled:
            events.state(
                "ready", "compute_scores was cancelled; scores of finished columns are kept"
            )
        except Exception as error:
            events.failed(error)
            raise
        except BaseException:  # KeyboardInterrupt: leave the widget ready, then stop
            events.state(
                "ready", "compute_scores was interrupted; scores of finished columns are kept"
            )
            raise
        finally:
            events.progress({})
            self._busy.release()

    def _reporter(self, task: str, base: int, total: int, user: Callable | None):
        def report(step: int, steps: int) -> None:
            if self._cancel.is_set():
                raise Cancelled(f"cancelled during {task}")
            done = base + step
            if step == 0 and done > 0:
                return  # the previous task reported this count already
            self.events.progress({"task": task, "done": done, "total": total})
            if user is not None and user(done, total) is False:
                raise Cancelled(f"cancelled by the progress callback during {task}")

        return report

    def _score(self, job: _Job, name: str, report: Callable) -> None:
        session = self.session
        inputs, classes = session.live.inputs, session.classes()
        curves = None
        try:
            if name == "faithfulness":
                values, curves = faithfulness(
                    self._forward, inputs, job.relevance, classes, self.options, report
                )
            else:
                values = sensitivity(
                    lambda x, c: self._explain(job, c),
                    inputs,
                    classes,
                    session.num_classes,
                    self.options,
                    report,
                )
        except EvaluationInputError:  # undefined for this column (e.g. an all-zero map)
            values = [None] * inputs.shape[0]
        # a column removed or changed meanwhile keeps no stale scores
        if session.store_long_score(name, job.id, job.generation, values, curves):
            self.events.scores()

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.session.forward(x)

    def _explain(self, job: _Job, classes: torch.Tensor) -> torch.Tensor:
        return self.session.explain(job.assignment, classes.tolist())


def _print_progress(done: int, total: int) -> None:
    end = "\n" if done >= total else ""
    print(f"\rcompute_scores: {done}/{total}", end=end, file=sys.stderr, flush=True)
