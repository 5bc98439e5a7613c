"""Running several jobs in threads that switch often, for the race tests of live explanations."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable


def run_threads(*jobs: tuple) -> list[BaseException]:
    """Run each job ``(function, *args)`` in its own thread, with the interpreter switching
    threads every 10 µs (so edits try to land inside backward passes); return the exceptions
    the jobs raised."""
    errors: list[BaseException] = []

    def run(work: Callable, *args) -> None:
        try:
            work(*args)
        except BaseException as error:  # noqa: BLE001 - returned to the test
            errors.append(error)

    threads = [threading.Thread(target=run, args=job) for job in jobs]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    return errors
