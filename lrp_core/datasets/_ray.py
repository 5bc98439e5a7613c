"""The Ray engine: the same batches as the in-process engine, on Ray Data actors.

The work is a Ray dataset of ``(config, batch)`` rows; ``map_batches`` runs them on a pool of
:class:`RayBatchWorker` actors, each of which builds its model copy and ``BatchWorker`` once and
writes every batch it finishes as a shard into the store (a directory all workers can reach: on
a cluster, a shared file system). The driver only counts finished rows for the progress and, when
all are done, merges the shards as the in-process engine does. ``ray`` is imported here only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ._errors import DatasetAttributionError, optional_import
from ._run import Run
from ._samples import load_batch
from ._shards import parts_dir, write_shard

if TYPE_CHECKING:
    from ._progress import Progress


class RayBatchWorker:
    """A Ray Data actor: one model and composite set for its life, shards written to ``store``."""

    def __init__(self, run: Run, threads: int):
        torch.set_num_threads(threads)
        self.run = run
        self.worker = run.worker()

    def __call__(self, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        samples = []
        for config, batch in zip(rows["config"].tolist(), rows["batch"].tolist(), strict=True):
            arrays = self.worker.run(config, load_batch(self.run.dataset, self.run.plan, batch))
            write_shard(parts_dir(self.run.store, self.run.configs[config].name), batch, arrays)
            samples.append(len(arrays["index"]))
        return {"config": rows["config"], "batch": rows["batch"], "samples": np.array(samples)}


def check_ray_arguments(workers: Any, threads: Any, address: Any) -> None:
    """Arguments of the Ray engine, checked before any work starts: ``workers`` and
    ``threads_per_worker`` are ints >= 1, ``address`` a string or None, and ray is installed."""
    if address is not None and not isinstance(address, str):
        raise DatasetAttributionError(
            f"address must be a Ray address string such as 'ray://host:10001' or 'auto', or "
            f"None for a local Ray, got {address!r}"
        )
    for value, name in ((workers, "workers"), (threads, "threads_per_worker")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise DatasetAttributionError(f"{name} must be an int >= 1, got {value!r}")
    optional_import("ray.data", "engine='ray'")


def _connect(ray: Any, address: str | None, workers: int) -> bool:
    """Connect to ``address``, or use the running Ray, or start a local one; True if started."""
    if ray.is_initialized():
        return False
    if address is not None:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    return True


def run_on_ray(
    run: Run,
    tasks: list[tuple[int, int]],
    address: str | None,
    workers: int,
    threads: int,
    tracker: Progress,
) -> None:
    """Compute the shards of ``tasks`` (``(config, batch)`` pairs) on ``workers`` actors."""
    check_ray_arguments(workers, threads, address)
    if not tasks:
        return
    ray = optional_import("ray", "engine='ray'")
    data = optional_import("ray.data", "engine='ray'")
    started = _connect(ray, address, workers)
    try:
        data.DataContext.get_current().enable_progress_bars = False
        rows = [{"config": config, "batch": batch} for config, batch in tasks]
        dataset = data.from_items(rows, override_num_blocks=len(rows)).map_batches(
            RayBatchWorker,
            fn_constructor_kwargs={"run": run, "threads": threads},
            batch_size=1,
            compute=data.ActorPoolStrategy(size=workers),
            num_cpus=1,
        )
        for finished in dataset.iter_batches(batch_size=1, prefetch_batches=0):
            tracker.update(int(finished["samples"].sum()))
    finally:
        if started:
            ray.shutdown()
