"""``attribute_dataset``: attribute and score a whole data set under several rule configurations.

Every batch that finishes is kept on disk as a shard (``_shards``); when all batches of a
configuration are there, they are merged into its HDF5 file (``_store``). So a run stopped at any
point -- cancelled, crashed, killed with ``kill -9`` -- continues where it stopped when the same
call is made again: finished batches are not recomputed, and no sample is missing or duplicated.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from lrp_core.core import registered_hook

from ._configs import RuleConfig, resolve_configs
from ._errors import DatasetAttributionError, optional_import
from ._progress import Progress, ProgressArg
from ._ray import check_ray_arguments, run_on_ray
from ._run import Run
from ._samples import Plan, iterate_batches, load_batch, source_dataset
from ._scores import score_settings
from ._shards import finished_batches, parts_dir, prepare_parts, remove_parts, write_shard
from ._store import is_complete, merge_shards, store_file
from ._worker import Target, check_target

ENGINES = ("local", "ray")


@dataclass
class AttributionStore:
    """The result of :func:`attribute_dataset`: the store directory and one HDF5 file per
    configuration (``files[name]``), in the order the configurations were given."""

    directory: Path
    files: dict[str, Path]
    samples: int


def attribute_dataset(
    model: nn.Module,
    data: Dataset | DataLoader,
    configs: Any,
    store: str | Path,
    *,
    target: Target = "label",
    scores: Sequence[str] | None = None,
    batch_size: int | None = None,
    float16: bool = False,
    faithfulness_steps: int = 10,
    patch_size: int | None = None,
    engine: str = "local",
    address: str | None = None,
    workers: int = 2,
    threads_per_worker: int = 1,
    progress: ProgressArg = True,
    overwrite: bool = False,
) -> AttributionStore:
    """Attribute every sample of ``data`` under each rule configuration, score it, store it.

    Parameters
    ----------
    model : torch.nn.Module
        The classifier, ``(B, C, H, W) -> (B, classes)``; left as it was (hooks removed,
        training mode restored). It must carry no LRP hooks (close an open Explorer first).
    data : Dataset or DataLoader
        A ``Dataset`` with a length, or a ``DataLoader`` reading in order; items are images,
        ``(image, label[, mask])`` or dicts (see ``lrp_core.datasets._samples``).
    configs : object
        One configuration, a list of them, or a dict name -> configuration. A configuration is
        a composite name, a ``Composite``, a JSON config (``lrp_core.live`` format), an object
        with a ``.config`` JSON attribute (an Explorer) or None (the plain gradient).
    store : str or Path
        Directory of the store, created if needed (one ``<name>.attribution.h5`` per
        configuration).
    target : {"label", "prediction"} or callable, default "label"
        The explained class: the data set's label, the predicted class, or
        ``target(output, labels) -> classes``.
    scores : sequence of str, optional
        Names from ``conservation_error``, ``sparseness``, ``relevance_mass``,
        ``pointing_game`` (these two need masks) and ``faithfulness``; None: all that apply;
        ``()``: none.
    batch_size : int, optional
        Samples per batch (default: the DataLoader's, else 32).
    float16 : bool, default False
        Store attributions as float16 (scores are computed before the cast).
    faithfulness_steps : int, default 10
        Region perturbation runs at most this many steps ...
    patch_size : int, optional
        ... over square regions of this side (None: image height // 16).
    engine : {"local", "ray"}, default "local"
        In this process, or on Ray Data actors (the ``ray`` extra).
    address : str, optional
        Ray cluster to connect to (None: the running Ray, else a local one of ``workers``
        CPUs, shut down afterwards). On a cluster, ``store`` must be on a shared file system.
    workers, threads_per_worker : int, default 2 and 1
        Ray actors, and torch threads per actor.
    progress : bool or callable, default True
        True: a tqdm bar (a widget in a notebook) when tqdm is installed; False: none; or a
        callback ``progress(done, total)`` that may return False to stop.
    overwrite : bool, default False
        Replace a store (or unfinished work) made with other settings.

    Returns
    -------
    AttributionStore
        The store directory and its file per configuration.

    Raises
    ------
    DatasetAttributionError
        A bad argument (the message names it).
    StoreMismatchError
        The store holds a run with other settings (see ``overwrite``).
    MissingExtraError
        h5py (or, for ``engine="ray"``, ray) is not installed.
    lrp_core.evaluation.Cancelled
        The progress callback stopped the run (call again to resume).
    """
    if engine == "ray":
        check_ray_arguments(workers, threads_per_worker, address)
    run = _prepare(model, data, configs, store, target, scores, batch_size, float16,
                   faithfulness_steps, patch_size, engine)  # fmt: skip
    image_shape = list(load_batch(run.dataset, Plan(1, 1), 0).images.shape[1:])
    manifests = [run.manifest(config, image_shape) for config in run.configs]
    pending = _pending(run, manifests, overwrite)
    done = run.plan.samples * len(run.configs) - sum(_samples(run.plan, p) for p in pending)
    tracker = Progress(progress, run.plan.samples * len(run.configs), done)
    try:
        if engine == "local":
            _run_local(run, pending, tracker)
        else:
            tasks = [(c, b) for c, batches in enumerate(pending) for b in batches]
            run_on_ray(run, tasks, address, workers, threads_per_worker, tracker)
    finally:
        tracker.close()
    for index, config in enumerate(run.configs):
        _finish(run, config, manifests[index], pending[index] is None)
    files = {c.name: store_file(run.store, c.name) for c in run.configs}
    return AttributionStore(run.store, files, run.plan.samples)


def _prepare(model, data, configs, store, target, scores, batch_size, float16,
             faithfulness_steps, patch_size, engine) -> Run:  # fmt: skip
    if not isinstance(model, nn.Module):
        raise DatasetAttributionError(f"model must be a torch.nn.Module, got {type(model)}")
    if any(registered_hook(module) is not None for module in model.modules()):
        raise DatasetAttributionError(
            f"model: this {type(model).__name__} carries LRP hooks (an open Explorer, Compare, "
            "LiveExplanation or attributor); close it first (explorer.close(): its .config stays "
            "readable, so the Explorer itself can still be given as a configuration), or pass a "
            "separate copy of the model"
        )
    if engine not in ENGINES:
        raise DatasetAttributionError(f"engine must be one of {ENGINES}, got {engine!r}")
    optional_import("h5py", "the attribution store (HDF5)")
    dataset, size, loader_workers = source_dataset(data, batch_size)
    plan = Plan(len(dataset), size)
    probe = load_batch(dataset, Plan(1, 1), 0)
    target = check_target(target)
    if target == "label" and probe.labels is None:
        raise DatasetAttributionError(
            "target='label' needs labels, and the dataset's items have none; give "
            "(image, label) items or use target='prediction'"
        )
    settings = score_settings(scores, probe.masks is not None, faithfulness_steps, patch_size)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    rule_configs = resolve_configs(configs, model, probe.images.to(device))
    store = Path(store).resolve()  # Ray workers run elsewhere
    store.mkdir(parents=True, exist_ok=True)
    return Run(model, dataset, plan, rule_configs, target, settings, bool(float16), store,
                loader_workers)  # fmt: skip


def _pending(run: Run, manifests: list[dict], overwrite: bool) -> list[list[int] | None]:
    """Per configuration: the batches still to compute (None: its file is complete)."""
    pending: list[list[int] | None] = []
    for config, manifest in zip(run.configs, manifests, strict=True):
        if is_complete(store_file(run.store, config.name), manifest, overwrite):
            pending.append(None)
            continue
        parts = parts_dir(run.store, config.name)
        prepare_parts(parts, manifest, overwrite)
        finished = finished_batches(parts)
        pending.append([b for b in range(run.plan.batches) if b not in finished])
    return pending


def _samples(plan: Plan, batches: list[int] | None) -> int:
    return sum(plan.bounds(b)[1] - plan.bounds(b)[0] for b in batches or [])


def _run_local(run: Run, pending: list[list[int] | None], tracker: Progress) -> None:
    worker = run.worker()
    try:
        for index, config in enumerate(run.configs):
            parts = parts_dir(run.store, config.name)
            for number, batch in _batches(run, pending[index] or []):
                write_shard(parts, number, worker.run(index, batch))
                tracker.update(len(batch.indices))
    finally:
        worker.close()


def _batches(run: Run, batches: list[int]) -> Iterator:
    return iterate_batches(run.dataset, run.plan, batches, run.loader_workers)


def _finish(run: Run, config: RuleConfig, manifest: dict, complete: bool) -> None:
    """Merge the shards of a finished configuration into its file, then drop them."""
    parts = parts_dir(run.store, config.name)
    if not complete:
        missing = set(range(run.plan.batches)) - finished_batches(parts)
        if missing:
            raise RuntimeError(f"{config.name}: batches {sorted(missing)[:10]} were not written")
        path = store_file(run.store, config.name)
        merge_shards(parts, path, run.plan, config.name, config.config_json, manifest)
    remove_parts(run.store, config.name)
