"""Cost of a live explanation's re-run after a parameter change, relative to a plain gradient.

Run: ``.venv/bin/python benchmarks/bench_live.py [--repeats N] [--threads T] [--models ...]``

For each model (the demo model on a batch of 1 with its canonizers, and a VGG-16-shaped network
on 1×3×128×128) and each composite (EpsilonPlusFlat, EpsilonGammaBox), it times, as medians of
interleaved repeats in one process:

- ``gradient``: a plain input gradient, forward + backward (the reference cost, 1.0×);
- ``rerun``: change one parameter of one layer's rule, then ``explain`` (backward only);
- ``target``: ``explain`` for another target with no rule change (backward only).

The issue's target is ``rerun`` ≤ 1.0× the gradient. The changed layer is a middle convolution.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import warnings
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import gradient_pass, timed, vgg16_shaped  # noqa: E402

from lrp_core.composites import EpsilonGammaBox, EpsilonPlusFlat  # noqa: E402
from lrp_core.live import LiveExplanation  # noqa: E402

TARGET_RATIO = 1.0


def models(demo_batch: int) -> dict[str, tuple[nn.Module, torch.Tensor, object, str]]:
    """name → (model, input, canonizer factory, name of the layer whose parameter changes)."""
    from lrp_widgets.demo import demo_canonizers, load_model, make_batch

    torch.manual_seed(0)
    demo_input = make_batch(demo_batch, seed=0)[0]
    vgg_input = torch.randn(1, 3, 128, 128)
    return {
        "demo": (load_model(), demo_input, demo_canonizers, "features.4"),
        "vgg16": (vgg16_shaped(), vgg_input, list, "14"),
    }


def composites(canonizers) -> dict:
    return {
        "EpsilonPlusFlat": lambda: EpsilonPlusFlat(canonizers=canonizers()),
        "EpsilonGammaBox": lambda: EpsilonGammaBox(low=-3.0, high=3.0, canonizers=canonizers()),
    }


def measure(model, x, make_composite, layer: str, repeats: int) -> dict[str, float]:
    """Median seconds of the three operations, interleaved so drifts hit them alike.

    The gradient runs on an untouched copy of the model (no hooks), as a user would run it.
    """
    reference = copy.deepcopy(model)
    seed = torch.zeros_like(reference(x))
    seed[:, 0] = 1.0
    times: dict[str, list[float]] = {"gradient": [], "rerun": [], "target": []}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        live = LiveExplanation(model, x, make_composite())
    try:
        rule = live.rule_of(layer).rule
        key = "gamma" if hasattr(rule, "gamma") else "stabilizer"
        live.explain(target=0)  # fills the cache of modified forwards
        gradient_pass(reference, x, seed)  # warm-up
        for i in range(repeats):
            times["gradient"].append(_wall(lambda: gradient_pass(reference, x, seed)))
            # a new value every time, as while dragging a slider (no cached terms to reuse)
            value = (0.25 if key == "gamma" else 1e-6) * (1.0 + 0.05 * (i + 1))

            def rerun(value=value):
                live.set_params(layer, **{key: value})
                live.explain(target=0)

            times["rerun"].append(_wall(rerun))
            times["target"].append(_wall(lambda i=i: live.explain(target=1 + i % 2)))
        assert live.forward_count == 1
    finally:
        live.close()
    return {name: statistics.median(values) for name, values in times.items()}


def _wall(fn) -> float:
    return timed(fn)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--models", nargs="*", default=["demo", "vgg16"])
    parser.add_argument("--demo-batch", type=int, default=8, help="demo batch size")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    print(f"demo batch {args.demo_batch}; vgg16 1x3x128x128; medians of {args.repeats} repeats")
    print(f"{'model':8} {'composite':16} {'gradient':>10} {'rerun':>10} {'ratio':>7} {'target':>8}")
    for name, (model, x, canonizers, layer) in models(args.demo_batch).items():
        if name not in args.models:
            continue
        for composite_name, make in composites(canonizers).items():
            t = measure(model, x, make, layer, args.repeats)
            ratio = t["rerun"] / t["gradient"]
            mark = "ok" if ratio <= TARGET_RATIO else "OVER"
            target = t["target"] / t["gradient"]
            print(
                f"{name:8} {composite_name:16} {t['gradient'] * 1e3:8.1f}ms "
                f"{t['rerun'] * 1e3:8.1f}ms {ratio:6.2f}× {target:7.2f}× {mark}"
            )


if __name__ == "__main__":
    main()
