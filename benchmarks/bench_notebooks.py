"""How long each tutorial notebook takes to run headlessly (the README promises under a minute).

Each notebook is executed once with nbclient in a fresh kernel, as the test suite does; the
table lists the wall time of each, beside the promise.

    .venv/bin/python benchmarks/bench_notebooks.py
"""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
PROMISE_SECONDS = 60.0


def run_seconds(path: Path) -> float:
    """Wall time of one headless run of the notebook at ``path``, in seconds."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start


def main() -> None:
    print(f"{'notebook':40s} {'seconds':>8s} {'of the promise':>15s}")
    for path in NOTEBOOKS:
        seconds = run_seconds(path)
        print(f"{path.name:40s} {seconds:8.1f} {seconds / PROMISE_SECONDS:14.2f}x")


if __name__ == "__main__":
    main()
