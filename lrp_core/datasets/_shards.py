"""Shards: the finished batches of a run, one ``.npz`` file each, written atomically.

Layout of a store directory while a configuration is in progress::

    <store>/.parts/<config>/manifest.json      the run's settings (a resumed run must match)
    <store>/.parts/<config>/batch-000017.npz   batch 17, complete

A shard is written to a temporary name and renamed into place (``os.replace``), so a shard either
exists complete or not at all, whenever the process is killed; leftover temporary files are
ignored and overwritten. Shards need only numpy, so Ray workers write them without h5py (on a
cluster the store directory must be on a file system the workers share).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from ._errors import StoreMismatchError

PARTS = ".parts"
_SHARD = re.compile(r"^batch-(\d+)\.npz$")


def parts_dir(store: Path, config: str) -> Path:
    """Where the shards of ``config`` live until they are merged."""
    return store / PARTS / config


def shard_path(parts: Path, batch: int) -> Path:
    return parts / f"batch-{batch:06d}.npz"


def write_shard(parts: Path, batch: int, arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` as batch ``batch``'s shard, atomically."""
    final = shard_path(parts, batch)
    temporary = parts / f".tmp-{uuid.uuid4().hex}.npz"
    with open(temporary, "wb") as file:
        np.savez(file, **arrays)
    os.replace(temporary, final)
    return final


def read_shard(parts: Path, batch: int) -> dict[str, np.ndarray]:
    with np.load(shard_path(parts, batch)) as shard:
        return {key: shard[key] for key in shard.files}


def finished_batches(parts: Path) -> set[int]:
    """Numbers of the batches whose shard is complete."""
    if not parts.is_dir():
        return set()
    return {int(m.group(1)) for m in map(_SHARD.match, os.listdir(parts)) if m}


def prepare_parts(parts: Path, manifest: dict[str, Any], overwrite: bool) -> None:
    """Create the shard directory with ``manifest``, or check the one there matches it.

    Raises
    ------
    StoreMismatchError
        Shards of a run with other settings are there (and ``overwrite`` is False).
    """
    path = parts / "manifest.json"
    found = None
    if path.exists():
        try:
            found = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            found = None  # killed while writing it: no shard was written after it
    if found == manifest:
        for stale in parts.glob(".tmp-*"):  # shards of a killed run, never renamed into place
            stale.unlink()
        return
    if found is not None and not overwrite:
        raise StoreMismatchError(
            f"{parts.parent.parent} holds unfinished work of configuration {parts.name!r} "
            f"with other settings ({differences(found, manifest)}); pass overwrite=True to "
            "discard it, or choose another store directory"
        )
    # without a valid manifest nothing in the folder belongs to this run
    shutil.rmtree(parts, ignore_errors=True)
    parts.mkdir(parents=True, exist_ok=True)
    temporary = parts / f".tmp-{uuid.uuid4().hex}.json"
    temporary.write_text(json.dumps(manifest, sort_keys=True))
    os.replace(temporary, path)


def differences(found: dict[str, Any], wanted: dict[str, Any]) -> str:
    """The settings that differ, for error messages."""
    keys = sorted(k for k in set(found) | set(wanted) if found.get(k) != wanted.get(k))
    return ", ".join(f"{k}: {found.get(k)!r} there, {wanted.get(k)!r} now" for k in keys)[:500]


def remove_parts(store: Path, config: str) -> None:
    """Delete ``config``'s shards (after the merge) and the parts folder once it is empty."""
    shutil.rmtree(parts_dir(store, config), ignore_errors=True)
    try:
        (store / PARTS).rmdir()
    except OSError:
        pass
