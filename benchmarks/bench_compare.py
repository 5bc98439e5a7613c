"""Compare widget: first render of a 4×4 grid versus the same 16 attributions by the engine alone.

Run: ``.venv/bin/python benchmarks/bench_compare.py [--repeats N] [--threads T] [--rows R]``

On the demo model (``lrp_widgets.demo``: its shipped weights, ``R`` demo images, the demo
canonizers) with the Compare widget's default columns (EpsilonPlusFlat, EpsilonGammaBox with
the batch's value range as box bounds, EpsilonAlpha2Beta1Flat, plain gradient) it times, as
medians of interleaved repeats in one process:

- ``compare``: ``Compare(model, images, canonizers=..., masks=...)`` until it returns, i.e. with
  the first heatmaps and the cheap scores (conservation error, sparseness, relevance mass,
  pointing game) in its traits (no page): one forward pass, one backward pass per column;
- ``engine``: the same 16 attributions with ``lrp_core.attribution.Gradient`` and each column's
  composite, one call (forward + backward) per (input, configuration).

The issue's target is ``compare`` ≤ 2× ``engine``. Wall-clock and process CPU time are printed;
on a shared machine read the CPU column.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import timed  # noqa: E402

from lrp_core.attribution import Gradient  # noqa: E402
from lrp_core.composites import (  # noqa: E402
    EpsilonAlpha2Beta1Flat,
    EpsilonGammaBox,
    EpsilonPlusFlat,
)
from lrp_widgets import Compare  # noqa: E402
from lrp_widgets.demo import demo_canonizers, load_model, make_batch  # noqa: E402

TARGET_RATIO = 2.0


def engine_composites(images: torch.Tensor) -> list:
    """The default columns' composites with fresh demo canonizers (None: plain gradient)."""
    low, high = float(images.min()), float(images.max())
    return [
        EpsilonPlusFlat(canonizers=demo_canonizers()),
        EpsilonGammaBox(low=low, high=high, canonizers=demo_canonizers()),
        EpsilonAlpha2Beta1Flat(canonizers=demo_canonizers()),
        None,
    ]


def run_engine(model, images: torch.Tensor, seeds: torch.Tensor) -> list[torch.Tensor]:
    """Relevance of every (configuration, input), one attribution call each; ``seeds`` are the
    one-hot rows of the predicted classes."""
    results = []
    for composite in engine_composites(images):
        with Gradient(model, composite) as attributor:
            for i in range(images.shape[0]):
                seed = seeds[i : i + 1]
                results.append(attributor(images[i : i + 1], seed)[1])
    return results


def run_compare(model, images: torch.Tensor, masks: torch.Tensor) -> Compare:
    return Compare(model, images, canonizers=demo_canonizers(), masks=masks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: default)")
    parser.add_argument("--rows", type=int, default=4, help="inputs (rows of the grid)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model()
    images, _, masks = make_batch(args.rows, seed=7)
    with torch.no_grad():
        output = model(images)
    seeds = torch.nn.functional.one_hot(output.argmax(1), output.shape[1]).to(output.dtype)

    # warm-up (imports, lazy initialisation) and a check that both compute the same maps
    grid = run_compare(model, images, masks)
    columns = grid.column_names
    relevances = [grid.relevance(name) for name in columns]
    grid.close()  # the engine cannot hook the model while the widget's live explanation does
    engine = run_engine(model, images, seeds)
    for j, relevance in enumerate(relevances):
        expected = torch.cat(engine[j * args.rows : (j + 1) * args.rows])
        torch.testing.assert_close(relevance, expected, rtol=1e-4, atol=1e-6)

    times: dict[str, list[tuple[float, float]]] = {"compare": [], "engine": []}
    widgets: list[Compare] = []
    for _ in range(args.repeats):
        times["compare"].append(timed(lambda: widgets.append(run_compare(model, images, masks))))
        widgets.pop().close()
        times["engine"].append(timed(lambda: run_engine(model, images, seeds)))

    median = {
        key: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
        for key, v in times.items()
    }
    cells = f"{args.rows}×{len(columns)}"
    print(f"demo model, {cells} grid, torch threads {torch.get_num_threads()}, "
          f"median of {args.repeats}")  # fmt: skip
    print(f"{'':<9}{'wall s':>9}{'cpu s':>9}")
    for key, (wall, cpu) in median.items():
        print(f"{key:<9}{wall:>9.3f}{cpu:>9.3f}")
    wall_ratio = median["compare"][0] / median["engine"][0]
    cpu_ratio = median["compare"][1] / median["engine"][1]
    verdict = "ok" if cpu_ratio <= TARGET_RATIO else "OVER TARGET"
    print(f"ratio compare/engine: wall {wall_ratio:.2f}×, cpu {cpu_ratio:.2f}× "
          f"(target ≤ {TARGET_RATIO:g}×: {verdict})")  # fmt: skip


if __name__ == "__main__":
    main()
