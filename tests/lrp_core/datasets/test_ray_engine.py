"""engine="ray": a real local Ray with 2 workers gives the in-process engine's store, sample for
sample, and shares its resumable shards (a run cancelled in-process is finished on Ray).

The local Ray (2 CPUs) is started once for the module and found by ``attribute_dataset`` as the
running Ray. On a machine whose cores are busy, Ray's raylet can give up waiting for its agent
process (a fixed 15 s): the start is then tried again, up to three times.
"""

from __future__ import annotations

import numpy as np
import pytest

from lrp_core.datasets import DatasetAttributionError, attribute_dataset
from lrp_core.evaluation import Cancelled

from . import fixtures
from .test_attribute import json_config, read

ray = pytest.importorskip("ray")

CONFIGS = {
    "eps": "EpsilonPlusFlat",
    "tuned": json_config({"type": "Linear", "rule": "Epsilon", "params": {"epsilon": 0.5}}),
}
KEYS = ("attribution", "prediction", "label", "index", "target", "true_label")


@pytest.fixture(scope="module")
def local_ray():
    for attempt in range(3):
        try:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            break
        except Exception:  # Ray raises a bare Exception when its start-up times out
            ray.shutdown()
            if attempt == 2:
                raise
    yield
    ray.shutdown()


def attribute(store, **kwargs):
    return attribute_dataset(
        fixtures.model(), fixtures.data(), CONFIGS, store, batch_size=4, **kwargs
    )


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_ray_finishes_a_cancelled_run_with_the_in_process_engines_values(tmp_path, local_ray):
    reference = attribute(tmp_path / "local", progress=False)
    with pytest.raises(Cancelled):
        attribute(tmp_path / "ray", progress=lambda done, total: done < 8)  # 2 batches of 12
    calls = []
    store = attribute(
        tmp_path / "ray", engine="ray", workers=2, progress=lambda d, t: calls.append((d, t))
    )
    assert ray.is_initialized()  # a running Ray is used, and left running
    # the 10 batches left (40 samples), each counted once; none of the 2 done is recomputed
    assert len(calls) == 10 and calls[-1] == (44, 44)
    assert sorted(d for d, _ in calls) == [d for d, _ in calls]
    for name in CONFIGS:
        ours, theirs = read(store.files[name]), read(reference.files[name])
        assert ours["attrs"]["config"] == theirs["attrs"]["config"]
        assert ours["attrs"]["settings"] == theirs["attrs"]["settings"]
        np.testing.assert_array_equal(ours["index"], np.arange(fixtures.SAMPLES))
        for key in KEYS:
            np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-12, atol=0, err_msg=key)
        score_keys = [k for k in theirs if k.startswith("scores/")]
        assert len(score_keys) == 5  # every score: the data set has masks
        for key in score_keys:
            np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-6, err_msg=key)
    assert not (tmp_path / "ray" / ".parts").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"workers": 0}, "workers must be an int >= 1"),
        ({"threads_per_worker": 1.5}, "threads_per_worker must be an int >= 1"),
        ({"address": 6379}, "address must be a Ray address"),
    ],
)
def test_bad_ray_arguments_are_named_before_anything_starts(tmp_path, kwargs, message):
    with pytest.raises(DatasetAttributionError, match=message):
        attribute(tmp_path / "store", engine="ray", progress=False, **kwargs)
    assert not (tmp_path / "store").exists()
