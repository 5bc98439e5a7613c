"""Cost of LRP attributions relative to a plain input gradient, on a VGG-16-shaped network.

Run: ``.venv/bin/python benchmarks/bench_engine.py [--repeats N] [--size S] [--threads T]``

Times forward + backward (median of interleaved repeats) for the plain input gradient and for
EpsilonPlusFlat and EpsilonGammaBox(low=-3, high=3) attributions with the composite registered,
and the peak bytes of live tensors each pass allocates (``memory.PeakMemory``). Prints both as
ratios to the gradient. Targets: time ≤ 1.6× (EpsilonPlusFlat) and ≤ 2.0× (EpsilonGammaBox),
memory ≤ 1.3×. If the reference library ``zennit`` is installed, it is measured as well.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import gradient_pass, timed, vgg16_shaped  # noqa: E402
from memory import PeakMemory  # noqa: E402

from lrp_core.composites import EpsilonGammaBox, EpsilonPlusFlat  # noqa: E402

TARGETS = {"EpsilonPlusFlat": 1.6, "EpsilonGammaBox": 2.0}
MEMORY_TARGET = 1.3


def _methods(model: nn.Module) -> dict[str, tuple[Callable, Callable]]:
    """name → (enter, exit) registering the method's hooks on ``model``."""
    methods = {"gradient": (lambda: None, lambda: None)}
    for name, composite in [
        ("EpsilonPlusFlat", EpsilonPlusFlat()),
        ("EpsilonGammaBox", EpsilonGammaBox(low=-3.0, high=3.0)),
    ]:
        methods[name] = (lambda c=composite: c.register(model), composite.remove)
    reference = _zennit_composites()
    if reference is None:
        return methods
    for name, composite in [
        ("zennit EpsilonPlusFlat", reference.EpsilonPlusFlat()),
        ("zennit EpsilonGammaBox", reference.EpsilonGammaBox(low=-3.0, high=3.0)),
    ]:
        methods[name] = (lambda c=composite: c.register(model), composite.remove)
    return methods


def _zennit_composites():
    """The reference library's composites module, or None when it is not installed."""
    try:
        from zennit import composites

        return composites
    except ImportError:
        pass
    try:  # zennit's package import needs torchvision; the test oracle supplies a stand-in
        from tests.lrp_core.zennit_oracle import load

        return load().composites
    except BaseException:  # ImportError, or pytest's Skipped when zennit is absent
        return None


def measure(repeats: int, size: int) -> dict[str, tuple[float, float, int]]:
    """name → (median wall seconds, median process CPU seconds, peak bytes)."""
    torch.manual_seed(0)
    model = vgg16_shaped()
    x = torch.rand(1, 3, size, size) * 2 - 1
    target = torch.zeros(1, 1000)
    target[0, 0] = 1.0
    methods = _methods(model)
    times: dict[str, list[float]] = {name: [] for name in methods}
    cpu_times: dict[str, list[float]] = {name: [] for name in methods}
    peaks: dict[str, int] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, (enter, leave) in methods.items():  # warm-up and memory
            enter()
            try:
                gradient_pass(model, x, target)
                with PeakMemory() as memory:
                    gradient_pass(model, x, target)
                peaks[name] = memory.peak
            finally:
                leave()
        for _ in range(repeats):
            for name, (enter, leave) in methods.items():
                enter()
                try:
                    wall, cpu = timed(lambda: gradient_pass(model, x, target))
                    times[name].append(wall)
                    cpu_times[name].append(cpu)
                finally:
                    leave()
    return {
        name: (statistics.median(times[name]), statistics.median(cpu_times[name]), peaks[name])
        for name in methods
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (0: torch's default); with 1 the "
        "CPU-time column is robust against other processes sharing the machine",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    results = measure(args.repeats, args.size)
    base_wall, base_cpu, base_peak = results["gradient"]
    print(
        f"VGG-16-shaped net, input 1x3x{args.size}x{args.size}, float32, CPU, "
        f"{torch.get_num_threads()} thread(s), median of {args.repeats} interleaved repeats"
    )
    print(
        f"{'method':<24}{'wall [s]':>9}{'ratio':>7}{'cpu [s]':>9}{'ratio':>7}"
        f"{'peak [MB]':>11}{'ratio':>7}  targets (time, memory)"
    )
    for name, (wall, cpu, peak) in results.items():
        target = TARGETS.get(name)
        note = f"<= {target}x, <= {MEMORY_TARGET}x" if target else ""
        print(
            f"{name:<24}{wall:>9.3f}{wall / base_wall:>7.2f}{cpu:>9.3f}{cpu / base_cpu:>7.2f}"
            f"{peak / 1e6:>11.1f}{peak / base_peak:>7.2f}  {note}"
        )


if __name__ == "__main__":
    main()
