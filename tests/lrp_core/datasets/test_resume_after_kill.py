"""A run killed with SIGKILL (while computing batches, or while merging shards into the HDF5 file)
continues when the same call is made again: no finished batch is recomputed, and the store equals
that of an uninterrupted run, sample for sample."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lrp_core.datasets import attribute_dataset

from . import fixtures

h5py = pytest.importorskip("h5py")

ROOT = Path(__file__).resolve().parents[3]
CONFIGS = ["EpsilonPlusFlat", None]
SCORES = ["conservation_error", "sparseness", "pointing_game"]

# The same call as in the test, in a child process that announces (marker file) when it reached
# the phase to be killed in and then slows down there, so the kill lands inside that phase.
CHILD = """
import pathlib, sys, time
import lrp_core.datasets._store as store_module
from lrp_core.datasets import attribute_dataset
from tests.lrp_core.datasets import fixtures
from tests.lrp_core.datasets.test_resume_after_kill import CONFIGS, SCORES

store, marker, phase = sys.argv[1:4]

def progress(done, total):
    if phase == "batches" and done >= 8:
        pathlib.Path(marker).touch()
        time.sleep(0.2)

if phase == "merge":
    read_shard = store_module.read_shard
    def slow_read_shard(parts, batch):
        if batch == 2:
            pathlib.Path(marker).touch()
            time.sleep(120)
        return read_shard(parts, batch)
    store_module.read_shard = slow_read_shard

attribute_dataset(fixtures.model(), fixtures.data(), CONFIGS, store, batch_size=4, scores=SCORES,
                  progress=progress)
raise SystemExit("the child finished before it was killed")
"""


def call(store: Path, progress=False):
    return attribute_dataset(
        fixtures.model(), fixtures.data(), CONFIGS, store, batch_size=4, scores=SCORES,
        progress=progress,
    )  # fmt: skip


def kill_child(store: Path, phase: str, delay: float) -> None:
    marker = store.parent / f"{phase}.marker"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(store), str(marker), phase],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while not marker.exists():
            if child.poll() is not None:
                raise AssertionError(child.stdout.read().decode())
            assert time.monotonic() < deadline, "the child never reached the phase"
            time.sleep(0.05)
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=60) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()


def shards(store: Path) -> int:
    return len(list(store.glob(".parts/*/batch-*.npz")))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The store of an uninterrupted run."""
    return call(tmp_path_factory.mktemp("reference"))


@pytest.mark.slow
@pytest.mark.parametrize(("phase", "delay"), [("batches", 0.0), ("batches", 0.35), ("merge", 0.1)])
def test_a_killed_run_resumes_without_missing_or_duplicated_samples(
    tmp_path, reference, phase, delay
):
    store = tmp_path / "store"
    kill_child(store, phase, delay)
    assert not (store / "EpsilonPlusFlat.attribution.h5").exists()
    kept = shards(store)
    assert kept >= 2  # the child finished batches before it died

    calls = []
    resumed = call(store, progress=lambda done, total: calls.append(done))
    # 6 batches per configuration: only those without a shard ran again
    assert len(calls) == 12 - kept
    assert sorted(p.name for p in store.iterdir()) == [
        "EpsilonPlusFlat.attribution.h5",
        "Gradient.attribution.h5",
    ]
    for name in reference.files:
        with h5py.File(reference.files[name]) as want, h5py.File(resumed.files[name]) as got:
            np.testing.assert_array_equal(got["index"][()], np.arange(fixtures.SAMPLES))
            for key in ("attribution", "prediction", "label", "target", "true_label"):
                np.testing.assert_array_equal(got[key][()], want[key][()], err_msg=key)
            for key in SCORES:
                np.testing.assert_array_equal(got["scores"][key][()], want["scores"][key][()])
