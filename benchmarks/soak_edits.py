"""Soak: many rule edits on one live explanation, memory and time per re-run (not run in CI).

Run: ``.venv/bin/python benchmarks/soak_edits.py [--edits 10000] [--every 1000] [--threads 1]``

On the demo model (batch of 4, 64×64, with its canonizers, EpsilonPlusFlat) it cycles through
edits of every kind a user makes (``set_params`` on convolutions and the classifier, ``assign``
of Gamma/Epsilon/ZPlus, a type-wide ``assign``, ``remove_override``, a refused value that must
change nothing), each followed by ``explain``. Every ``--every`` edits it prints the process's
resident memory (RSS, from ``/proc/self/status``) and the median re-run time of that block. At
the end the live result is compared with a fresh attribution (``lrp_core.attribution.Gradient``
with ``live.to_composite()`` on a new copy of the model) and the model with its state before.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lrp_core.attribution import Gradient  # noqa: E402
from lrp_core.live import LiveExplanation, RuleParameterError  # noqa: E402
from lrp_widgets.demo.canonizers import demo_canonizers  # noqa: E402
from lrp_widgets.demo.model import ShapeNet  # noqa: E402

CONVOLUTIONS = ["features.0", "features.4", "block.conv1", "block.conv2", "head.0"]


def rss_mib() -> float:
    """Resident memory of this process in MiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def demo_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return ShapeNet(4).eval()


def edit(live: LiveExplanation, i: int) -> None:
    """The i-th edit of the cycle (see the module docstring)."""
    layer = CONVOLUTIONS[i % len(CONVOLUTIONS)]
    value = 0.05 + (i % 7) * 0.1
    kind = i % 6
    if kind == 0:
        live.assign("Gamma", name=layer, gamma=value)
    elif kind == 1:
        live.assign("Epsilon", name=layer, epsilon=value * 1e-2)
    elif kind == 2:
        live.assign("ZPlus", type="Conv2d", within="block")
    elif kind == 3:
        live.set_params("classifier", epsilon=value)
    elif kind == 4:
        try:
            live.set_params("classifier", epsilon=1e300)  # refused: nothing may change
        except RuleParameterError:
            pass
    else:
        overrides = [o for o in live.assignment.overrides if o.name == layer]
        if overrides:
            live.remove_override(name=layer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=10_000)
    parser.add_argument("--every", type=int, default=1_000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    model = demo_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    live = LiveExplanation(model, x, "epsilon_plus_flat", canonizers=demo_canonizers())
    live.explain(0)
    print(f"start: RSS {rss_mib():.0f} MiB")
    print(f"{'edits':>7} {'RSS MiB':>8} {'re-run ms (median)':>19}")
    times: list[float] = []
    for i in range(1, args.edits + 1):
        edit(live, i)
        start = time.perf_counter()
        result = live.explain(0)
        times.append(time.perf_counter() - start)
        if i % args.every == 0:
            print(f"{i:>7} {rss_mib():>8.0f} {statistics.median(times) * 1000:>19.2f}")
            times = []
    composite = live.to_composite()
    live.close()
    same = all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with Gradient(demo_model(), composite) as attributor:
        _, expected = attributor(x, result.seed)
    error = float((result.relevance - expected).abs().max() / expected.abs().max())
    print(f"relative difference to a fresh attribution: {error:.2e}; model unchanged: {same}")


if __name__ == "__main__":
    main()
