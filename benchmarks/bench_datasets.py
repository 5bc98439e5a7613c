"""``lrp_core.datasets.attribute_dataset`` on the demo data: throughput and memory.

Three measurements, each printed with its target (see ``benchmarks/README.md``):

``throughput``
    In one process, interleaved: a bare loop of ``lrp_core.attribution.Gradient`` with
    EpsilonPlusFlat over the same batches of the same demo images (the reference), and
    ``attribute_dataset`` in-process with that composite, scores off, progress bar on (so the
    ratio counts storage and progress). Then, with Ray: the start-up of a local Ray of 2 CPUs
    (timed on its own) and ``attribute_dataset(engine="ray", workers=2, threads_per_worker=1)``
    on the running Ray. Torch runs one thread in this process and in every Ray worker.
``memory``
    Peak RSS of a fresh process attributing N lazily generated demo images (nothing holds the
    data set), for each N given; the ratio of the largest to the smallest.

Usage::

    python benchmarks/bench_datasets.py throughput --samples 2000 --repeats 2
    python benchmarks/bench_datasets.py memory --sizes 2000 20000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import Dataset, TensorDataset

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lrp_core.attribution import Gradient  # noqa: E402
from lrp_core.composites import EpsilonPlusFlat  # noqa: E402
from lrp_core.datasets import attribute_dataset  # noqa: E402
from lrp_widgets.demo import CLASSES, load_model, make_batch  # noqa: E402

BATCH = 64


class LazyShapes(Dataset):
    """``n`` demo images, item ``i`` generated on demand from seed ``i`` (nothing is kept)."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int):
        images, labels, masks = make_batch(1, seed=index)
        return images[0], int(labels[0]), masks[0]


def bare_loop(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> None:
    """The reference: the engine's attributor over the same batches, results dropped."""
    with Gradient(model, EpsilonPlusFlat()) as attributor:
        for start in range(0, len(images), BATCH):
            seed = torch.nn.functional.one_hot(labels[start : start + BATCH], len(CLASSES))
            attributor(images[start : start + BATCH], seed.float())


def timed(function) -> tuple[float, float]:
    """(wall, process CPU) seconds of ``function()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return time.perf_counter() - wall, time.process_time() - cpu


def throughput(samples: int, repeats: int) -> None:
    torch.set_num_threads(1)
    model = load_model()
    images, labels, masks = make_batch(samples, seed=7)
    data = TensorDataset(images, labels, masks)
    rows: dict[str, list[tuple[float, float]]] = {"bare Gradient loop": [], "in-process": []}
    with tempfile.TemporaryDirectory() as folder:
        for repeat in range(repeats):
            rows["bare Gradient loop"].append(timed(lambda: bare_loop(model, images, labels)))
            store = Path(folder) / f"local-{repeat}"
            rows["in-process"].append(
                timed(
                    lambda s=store: attribute_dataset(
                        model, data, EpsilonPlusFlat(), s, scores=(), batch_size=BATCH
                    )
                )  # fmt: skip
            )
        ray_rows, startup = _ray_runs(model, data, Path(folder), repeats)
    _report(samples, rows, ray_rows, startup)


def _ray_runs(model, data, folder: Path, repeats: int) -> tuple[list[tuple[float, float]], float]:
    import ray

    for attempt in range(3):  # on a loaded machine the raylet may time out waiting for its agent
        start = time.perf_counter()
        try:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            break
        except Exception as error:  # Ray raises a bare Exception on a start-up timeout
            print(f"  Ray start-up attempt {attempt + 1} failed: {error}", file=sys.stderr)
            ray.shutdown()
    else:
        raise RuntimeError("Ray did not start")
    startup = time.perf_counter() - start
    try:
        rows = [
            timed(
                lambda s=folder / f"ray-{repeat}": attribute_dataset(
                    model,
                    data,
                    EpsilonPlusFlat(),
                    s,
                    scores=(),
                    batch_size=BATCH,
                    engine="ray",
                    workers=2,
                    threads_per_worker=1,
                    progress=False,
                )
            )
            for repeat in range(repeats)
        ]
    finally:
        ray.shutdown()
    return rows, startup


def _report(samples, rows, ray_rows, startup) -> None:
    print(f"{samples} demo images 3x64x64, batches of {BATCH}, EpsilonPlusFlat, scores off, "
          f"1 torch thread per process; load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    bare = statistics.median(w for w, _ in rows["bare Gradient loop"])
    local = statistics.median(w for w, _ in rows["in-process"])
    for name, values in [*rows.items(), ("ray, 2 workers", ray_rows)]:
        wall = statistics.median(w for w, _ in values)
        cpu = statistics.median(c for _, c in values)
        print(f"  {name:<20} {samples / wall:7.1f} images/s  (wall {wall:6.1f} s, this "
              f"process's CPU {cpu:6.1f} s)")  # fmt: skip
    print(f"  in-process / bare loop throughput: {bare / local:.2f}x  (target >= 0.8x)")
    ray_wall = statistics.median(w for w, _ in ray_rows)
    print(f"  ray / in-process throughput: {local / ray_wall:.2f}x  (target >= 1.5x)")
    print(f"  Ray start-up (ray.init, 2 CPUs), not included above: {startup:.1f} s")


def memory(sizes: list[int]) -> None:
    peaks = {}
    for size in sizes:
        done = subprocess.run(
            [sys.executable, __file__, "_memory_child", str(size)],
            capture_output=True, text=True, check=True, cwd=ROOT,
        )  # fmt: skip
        peaks[size] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"  {size:6d} images: peak RSS {peaks[size]['peak_mb']:7.1f} MB "
              f"({peaks[size]['seconds']:.0f} s)")  # fmt: skip
    small, large = peaks[min(sizes)]["peak_mb"], peaks[max(sizes)]["peak_mb"]
    print(f"  peak at {max(sizes)} / peak at {min(sizes)}: {large / small:.3f}  (target <= 1.10)")


def _memory_child(size: int) -> None:
    torch.set_num_threads(1)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        attribute_dataset(load_model(), LazyShapes(size), EpsilonPlusFlat(), folder,
                          batch_size=BATCH, scores=("sparseness",), progress=False)  # fmt: skip
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    print(json.dumps({"peak_mb": peak, "seconds": time.perf_counter() - start}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["throughput", "memory", "_memory_child"])
    parser.add_argument("size", nargs="?", type=int)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000])
    args = parser.parse_args()
    if args.mode == "throughput":
        throughput(args.samples, args.repeats)
    elif args.mode == "memory":
        memory(args.sizes)
    else:
        _memory_child(args.size)


if __name__ == "__main__":
    main()
