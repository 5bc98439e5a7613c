"""The store: one HDF5 file per configuration, in ViRelAy's attribution layout.

``<store>/<config>.attribution.h5`` holds, for the N samples in data-set order:

=================  ===================  ==========================================================
``attribution``    ``[N, C, H, W]``     relevance (float32, or float16 with ``float16=True``)
``prediction``     ``[N, classes]``     model output (logits), float32
``label``          ``[N, classes]``     the output relevance the explanation started from (the
                                        one-hot seed of the explained class), float32 -- what
                                        ViRelAy calls the attribution label
``index``          ``[N]``              position of the sample in the data set, int64
``target``         ``[N]``              the explained class, int64
``true_label``     ``[N]``              the data set's label (-1 without labels), int64
``scores/<name>``  ``[N]``              per-sample scores, float32 (NaN where undefined)
=================  ===================  ==========================================================

``attribution`` is chunked one sample per chunk, all datasets are gzip-compressed (with the
shuffle filter). Attributes of the file: ``config`` (the configuration as ``lrp_core.config``
JSON), ``name``, ``settings`` (JSON of the run's settings), ``format``/``version``; of
``scores``: each score's mean over the samples where it is defined. The file appears only when
complete (written under a temporary name, then renamed).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from ._errors import StoreMismatchError, optional_import
from ._samples import Plan
from ._shards import differences, read_shard

FORMAT = "lrp_core.datasets"
VERSION = 1
SUFFIX = ".attribution.h5"
_SMALL_CHUNK = 1024  # samples per chunk of the per-sample vectors


def store_file(store: Path, config: str) -> Path:
    return store / f"{config}{SUFFIX}"


def _h5py():
    return optional_import("h5py", "the attribution store (HDF5)")


def is_complete(path: Path, settings: dict[str, Any], overwrite: bool) -> bool:
    """Whether ``path`` is a finished store of exactly these settings.

    Raises
    ------
    StoreMismatchError
        It holds a run with other settings and ``overwrite`` is False (with ``overwrite`` the
        file is removed).
    """
    if not path.exists():
        return False
    try:
        with _h5py().File(path, "r") as file:
            found = json.loads(file.attrs["settings"])
    except (OSError, KeyError, ValueError):
        found = {"settings": "unreadable"}
    if found == settings:
        return True
    if not overwrite:
        raise StoreMismatchError(
            f"{path} holds a run with other settings ({differences(found, settings)}); pass "
            "overwrite=True to replace it, or choose another store directory"
        )
    path.unlink()
    return False


def _create(file: Any, name: str, value: np.ndarray, samples: int) -> Any:
    per_sample = value.shape[1:]
    chunks = (
        (1, *per_sample) if name == "attribution" else (min(samples, _SMALL_CHUNK), *per_sample)
    )
    return file.create_dataset(
        name,
        shape=(samples, *per_sample),
        dtype=value.dtype,
        chunks=chunks,
        compression="gzip",
        compression_opts=1,
        shuffle=True,
    )


def merge_shards(
    parts: Path, path: Path, plan: Plan, name: str, config_json: str, settings: dict[str, Any]
) -> None:
    """Stream the shards of ``parts`` (every batch of ``plan``) into the HDF5 file ``path``.

    One shard is in memory at a time. The file is written under a temporary name and renamed, so
    a killed merge leaves the shards for the next call.
    """
    h5py = _h5py()
    for stale in path.parent.glob(f".{path.name}.tmp-*"):  # left by a killed merge
        stale.unlink()
    temporary = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex}")
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    try:
        with h5py.File(temporary, "w") as file:
            datasets: dict[str, Any] = {}
            for batch in range(plan.batches):
                arrays = read_shard(parts, batch)
                start, stop = plan.bounds(batch)
                if not np.array_equal(arrays["index"], np.arange(start, stop)):
                    raise RuntimeError(f"shard {batch} of {parts} does not hold {start}..{stop}")
                for key, value in arrays.items():
                    dataset_name = key.replace("score.", "scores/")
                    if key not in datasets:
                        datasets[key] = _create(file, dataset_name, value, plan.samples)
                    datasets[key][start:stop] = value
                    if key.startswith("score."):
                        finite = value[np.isfinite(value)]
                        sums[key] = sums.get(key, 0.0) + float(finite.astype(np.float64).sum())
                        counts[key] = counts.get(key, 0) + int(finite.size)
            scores = file.require_group("scores")
            for key, total in sums.items():
                scores.attrs[f"{key[len('score.') :]}_mean"] = total / max(counts[key], 1)
            file.attrs.update(
                {
                    "format": FORMAT,
                    "version": VERSION,
                    "name": name,
                    "config": config_json,
                    "settings": json.dumps(settings, sort_keys=True),
                }
            )
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
