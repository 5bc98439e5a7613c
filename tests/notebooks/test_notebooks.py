"""Every notebook in ``notebooks/`` runs headlessly from top to bottom without an error.

Also checks how the notebooks are stored (no outputs, a first cell saying what it teaches) and that
``scripts/run_notebook.sh``, the headless runner the README points to, reports failures through
its exit code.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
RUNNER = REPO / "scripts" / "run_notebook.sh"
#: a guard against a hanging cell, not a speed target: how long the notebooks take is measured by
#: benchmarks/bench_notebooks.py (the quickstart promise, under a minute each)
CELL_TIMEOUT_SECONDS = 600


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no .ipynb file"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_clean(path: Path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    first = notebook.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# "), (
        "the first cell must be a markdown title saying what the notebook teaches"
    )
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, (
                f"{path.name} is stored with outputs; clear them before committing"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path: Path):
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_SECONDS,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    executed = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert executed and all(cell.execution_count is not None for cell in executed)


def _write_notebook(path: Path, *sources: str) -> Path:
    cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return path


def test_runner_script_exit_code(tmp_path: Path):
    """run_notebook.sh exits 0 for a notebook that runs, non-zero when a cell raises."""
    good = _write_notebook(tmp_path / "good.ipynb", "x = 1 + 1", "assert x == 2")
    bad = _write_notebook(tmp_path / "bad.ipynb", "x = 1", "raise ValueError('expected failure')")
    env = {**os.environ, "PY": sys.executable}
    run = subprocess.run(
        ["bash", str(RUNNER), str(good), str(bad)], env=env, capture_output=True, text=True
    )
    assert f"ok: {good}" in run.stdout, run.stderr  # the good one ran and passed
    assert run.returncode != 0
    assert "expected failure" in run.stderr and f"FAILED: {bad}" in run.stderr
