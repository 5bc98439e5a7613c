"""Cost of AttnLRP on a Llama-shaped transformer relative to a plain gradient, and LXT beside it.

Run: ``.venv/bin/python benchmarks/bench_transformer.py [--repeats N] [--lengths 128 512 2048]``

A ``LlamaForCausalLM`` built from a config (4 layers, hidden 256, 8 heads, 4 key/value heads,
intermediate 688, vocabulary 1000; random weights, eager attention, float32, CPU, batch 1)
explains the logit of its top next token from the input embeddings. For each sequence length it
measures, interleaved (median of the repeats):

| method     | what runs                                                                  |
| ---------- | -------------------------------------------------------------------------- |
| `gradient` | forward, then the gradient of the logit w.r.t. the embeddings               |
| `AttnLRP`  | the same with ``lrp_core``'s ``AttnLRP`` registered (``Gradient`` attributor) |
| `live`     | a ``LiveExplanation`` with ``AttnLRP``: one op rule's parameter changed, then |
|            | ``explain`` (backward only)                                                |

then, since LXT patches the modeling code process-wide, ``LXT`` (LXT 2.1's efficient mode:
``monkey_patch`` with its ``attnLRP`` map, relevance = embeddings × gradient) after the others, if
``lxt`` and transformers < 5 are installed. Peak memory is the largest number of bytes of tensor
storages the pass held at one time (``memory.PeakMemory``, in one extra pass per method, so that
its tracking does not slow the timed ones). Everything is printed as ratios to the
gradient of the same length.

Targets at length 128: AttnLRP ≤ 1.3× the gradient's time and peak memory and no slower than LXT;
the live re-run ≤ 0.8× the gradient's time; growth with the length no worse than the gradient's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import warnings
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import timed  # noqa: E402
from memory import PeakMemory  # noqa: E402

from lrp_core.attribution import Gradient  # noqa: E402
from lrp_core.live import LiveExplanation  # noqa: E402
from lrp_core.op_composites import AttnLRP  # noqa: E402

TARGETS = {"AttnLRP": 1.3, "live": 0.8}
MEMORY_TARGET = 1.3


def llama_shaped() -> nn.Module:
    """The benchmark's model (see the module docstring), in eval mode."""
    import transformers as tf

    torch.manual_seed(0)
    config = tf.LlamaConfig(
        vocab_size=1000,
        hidden_size=256,
        intermediate_size=688,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=4,
        max_position_embeddings=4096,
        attn_implementation="eager",
    )
    return tf.LlamaForCausalLM(config).eval()


class LastLogits(nn.Module):
    """Embeddings ``(1, L, 256)`` → the logits of the last position ``(1, V)``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.model(inputs_embeds=embeddings, use_cache=False).logits[:, -1]


def _inputs(model: nn.Module, length: int) -> torch.Tensor:
    ids = torch.randint(0, 1000, (1, length), generator=torch.Generator().manual_seed(length))
    with torch.no_grad():
        return model.model.embed_tokens(ids)


def _gradient(wrapped: nn.Module, x: torch.Tensor, seed: torch.Tensor) -> torch.Tensor:
    x = x.detach().requires_grad_()
    (grad,) = torch.autograd.grad(wrapped(x), x, seed)
    return grad


def _attnlrp(wrapped: nn.Module, x: torch.Tensor, seed: torch.Tensor) -> torch.Tensor:
    with Gradient(wrapped, AttnLRP(epsilon=1e-6)) as attributor:
        return attributor(x, seed)[1]


def _measure(fn, repeats_into: dict, name: str) -> None:
    """Time ``fn`` (appended to ``repeats_into[name]``); the first time, also its peak memory
    in a pass of its own (the memory tracker's dispatch would distort the times)."""
    rows = repeats_into.setdefault(name, [])
    if not rows:
        with PeakMemory() as memory:
            fn()
        repeats_into.setdefault("_peak", {})[name] = memory.peak
    wall, cpu = timed(fn)
    rows.append((wall, cpu))


def measure_length(wrapped: nn.Module, length: int, repeats: int) -> dict:
    """name → (median wall s, median CPU s, peak bytes) at one sequence length."""
    x = _inputs(wrapped.model, length)
    with torch.no_grad():
        target = int(wrapped(x)[0].argmax())
    seed = torch.zeros(1, 1000)
    seed[0, target] = 1.0
    results: dict[str, list] = {}
    # a second wrapper of the same model: the live explanation owns its root while it is open
    live = LiveExplanation(LastLogits(wrapped.model), x, AttnLRP(epsilon=1e-6))
    live.explain(target)
    epsilons = [1e-3, 1e-4]

    def rerun(i: list = [0]) -> None:  # noqa: B006 (a counter)
        i[0] += 1
        live.set_op_params("model.model.layers.1.self_attn:matmul#0", epsilon=epsilons[i[0] % 2])
        live.explain(target)

    try:
        for _ in range(repeats):
            _measure(lambda: _gradient(wrapped, x, seed), results, "gradient")
            _measure(lambda: _attnlrp(wrapped, x, seed), results, "AttnLRP")
            _measure(rerun, results, "live")
    finally:
        live.close()
    peaks = results.pop("_peak")
    return {name: (*_medians(rows), peaks[name]) for name, rows in results.items()}


def measure_lxt(wrapped: nn.Module, length: int, repeats: int) -> tuple | None:
    """LXT's efficient mode (after its process-wide patch), or None if it is not installed."""
    x = _inputs(wrapped.model, length)
    with torch.no_grad():
        target = int(wrapped(x)[0].argmax())
    seed = torch.zeros(1, 1000)
    seed[0, target] = 1.0
    rows: dict[str, list] = {}
    for _ in range(repeats):
        _measure(lambda: x * _gradient(wrapped, x, seed), rows, "LXT")
    return (*_medians(rows["LXT"]), rows["_peak"]["LXT"])


def patch_lxt() -> bool:
    """Apply LXT 2.1's attnLRP patch to transformers' Llama; False if LXT cannot be imported."""
    try:
        from tests.lrp_core.lxt_oracle import _stand_in_torchvision

        _stand_in_torchvision()
        from lxt.efficient import monkey_patch
        from lxt.efficient.models.llama import attnLRP
        from transformers.models.llama import modeling_llama
    except ImportError as error:
        print(f"(LXT not measured: {error})")
        return False
    monkey_patch(modeling_llama, attnLRP)
    return True


def _medians(rows: list) -> tuple[float, ...]:
    return tuple(statistics.median(column) for column in zip(*rows, strict=True))


def report(length: int, results: dict) -> None:
    wall, cpu, peak = results["gradient"]
    print(
        f"\nsequence {length}: gradient {wall:.3f} s wall, {cpu:.3f} s CPU, {peak / 2**20:.1f} MB"
    )
    print(f"{'method':10} {'wall':>7} {'CPU':>7} {'memory':>7}")
    for name, (w, c, p) in results.items():
        print(f"{name:10} {w / wall:6.2f}× {c / cpu:6.2f}× {p / peak:6.2f}×")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 512, 2048])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    wrapped = LastLogits(llama_shaped())
    for parameter in wrapped.parameters():
        parameter.requires_grad_(False)
    results = {}
    for length in args.lengths:
        repeats = max(2, args.repeats * 128 // length) if length > 128 else args.repeats
        results[length] = measure_length(wrapped, length, repeats)
    if patch_lxt():
        for length in args.lengths:
            repeats = max(2, args.repeats * 128 // length) if length > 128 else args.repeats
            results[length]["LXT"] = measure_lxt(wrapped, length, repeats)
    for length in args.lengths:
        report(length, results[length])
    base = results[args.lengths[0]]
    print(f"\ngrowth from sequence {args.lengths[0]} (wall time, memory):")
    for length in args.lengths[1:]:
        for name, (w, _, p) in results[length].items():
            w0, _, p0 = base[name]
            print(f"  {length:5} {name:10} {w / w0:7.1f}× {p / p0:7.1f}×")


if __name__ == "__main__":
    main()
