"""Per-layer relevance records of one backward pass, and the conservation report built on them.

For a module f in the backward pass, the relevance *entering* it is what arrives at its output(s)
from the layers above, the relevance *leaving* it is what it passes to its input(s). Totals are
per sample (sum over every axis but the first). A conserving rule leaves as much as enters; the
difference is *absorbed* (by biases and stabilizers) when positive, *created* when negative.
A module called several times in one forward gets one record summing its calls.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch


def _sample_sums(tensor: torch.Tensor) -> torch.Tensor:
    """Per-sample sums (as float64) of one tensor (a scalar: one sum)."""
    return _raw_sums(tensor).to(torch.float64)


def _combine(sums: Iterable[torch.Tensor]) -> torch.Tensor:
    """Per-sample sums of several tensors added (different batch layouts: the grand total)."""
    total = None
    for t in sums:
        if total is None:
            total = t
        elif total.shape == t.shape:
            total = total + t
        else:  # different batch layouts: only the grand total is meaningful
            total = (total.sum() + t.sum()).reshape(1)
    return torch.zeros(1, dtype=torch.float64) if total is None else total


def _nonfinite(tensors: Iterable[torch.Tensor | None]) -> int:
    """NaN/inf elements in ``tensors`` (counted only once a sum was not finite: sums of finite
    values are finite, barring overflow)."""
    return sum(int((~torch.isfinite(t)).sum()) for t in tensors if t is not None)


@dataclass
class LayerRecord:
    """What one module did to the relevance in one backward pass.

    ``entering``/``leaving``: per-sample totals (float64, shape ``(N,)``); ``nonfinite_entering``
    and ``nonfinite_leaving``: counts of NaN/inf elements; ``relevance_out``/``relevance_in``: the
    relevance at the module's first output/input (only when tensors were requested; ``None``
    otherwise); ``calls``: how many calls of the module the record covers.
    """

    name: str
    type: str
    rule: str
    entering: torch.Tensor
    leaving: torch.Tensor
    nonfinite_entering: int = 0
    nonfinite_leaving: int = 0
    relevance_out: torch.Tensor | None = None
    relevance_in: torch.Tensor | None = None
    calls: int = 1

    @property
    def absorbed(self) -> torch.Tensor:
        """Per-sample relevance absorbed (entering − leaving; negative: created)."""
        if self.entering.shape != self.leaving.shape:
            return self.entering.sum().reshape(1) - self.leaving.sum().reshape(1)
        return self.entering - self.leaving

    def channel_sums(self) -> torch.Tensor:
        """Per-sample, per-channel sums of the relevance at the output, shape ``(N, C)``.

        Raises ``RuntimeError`` when tensors were not requested for this module.
        """
        if self.relevance_out is None:
            raise RuntimeError(
                f"no relevance tensor was kept for {self.name!r}; request it with "
                f"keep_tensors=[{self.name!r}] (or keep_tensors=True)"
            )
        t = self.relevance_out.to(torch.float64)
        if t.ndim < 2:
            return t.reshape(-1, 1)
        return t.reshape(t.shape[0], t.shape[1], -1).sum(dim=2)

    def top_channels(self, k: int = 5, sample: int = 0) -> list[tuple[int, float]]:
        """The ``k`` output channels with the largest relevance sum for ``sample``."""
        sums = self.channel_sums()[sample]
        values, indices = sums.topk(min(int(k), sums.numel()))
        return [(int(i), float(v)) for i, v in zip(indices, values, strict=True)]

    def to_dict(self) -> dict:
        """JSON-serialisable summary (no tensors)."""
        return {
            "name": self.name,
            "type": self.type,
            "rule": self.rule,
            "entering": self.entering.tolist(),
            "leaving": self.leaving.tolist(),
            "absorbed": self.absorbed.tolist(),
            "nonfinite_entering": self.nonfinite_entering,
            "nonfinite_leaving": self.nonfinite_leaving,
            "calls": self.calls,
        }


class RecordCollector:
    """Collects ``LayerRecord``s during one backward pass (``records``, once the pass is done).

    ``keep_tensors(name)`` decides per module whether its relevance tensors are kept. In the pass
    each relevance tensor costs one reduction (per-sample sums in its own dtype, reused when the
    same tensor leaves one module and enters the next); the sums become float64 together when
    ``records`` is first read.
    """

    def __init__(self, keep_tensors: Callable[[str], bool] = lambda name: False):
        self.keep_tensors = keep_tensors
        self._calls: list[tuple] = []
        self._records: dict[str, LayerRecord] | None = None
        # the last call's leaving tensors as (tensor, version, sums, finite): in a chain of
        # modules the relevance leaving one is the very tensor entering the next
        self._last: list[tuple] = []

    def _sums(self, tensor: torch.Tensor, known: list) -> tuple:
        """(tensor, sums, finite) for ``tensor``, reused from ``known`` entries when present."""
        for kept, version, sums, finite in known:
            if kept is tensor and kept._version == version:
                return tensor, sums, finite
        sums = _raw_sums(tensor)
        return tensor, sums, all(map(math.isfinite, sums.tolist()))

    def add(
        self, name: str, module: torch.nn.Module, rule: str, entering: tuple, leaving: tuple
    ) -> None:
        """Record one module call: ``entering`` at its outputs, ``leaving`` at its inputs."""
        ins = [self._sums(t, self._last) for t in entering if t is not None]
        # a rule that passes the relevance on unchanged returns the very tensor it got
        known = [(t, t._version, sums, finite) for t, sums, finite in ins]
        outs = [self._sums(t, known) for t in leaving if t is not None]
        self._last = [(t, t._version, sums, finite) for t, sums, finite in outs]
        nonfinite_in = 0 if all(f for *_, f in ins) else _nonfinite(entering)
        nonfinite_out = 0 if all(f for *_, f in outs) else _nonfinite(leaving)
        tensors = (None, None)
        if self.keep_tensors(name):
            tensors = tuple(t[0].detach().clone() if t else None for t in (entering, leaving))
        sums = ([s for _, s, _ in ins], [s for _, s, _ in outs])
        counts = (nonfinite_in, nonfinite_out)
        self._calls.append((name, type(module).__name__, rule, sums, counts, tensors))
        self._records = None

    def add_products(
        self, name: str, kind: str, rule: str, entering: tuple, leaving: tuple
    ) -> None:
        """Record one captured operation whose relevance is ``value ⊙ gradient``: ``entering``
        (at its outputs) and ``leaving`` (at its operands) are ``(value, gradient)`` pairs. The
        products are summed per sample without being formed; they are formed only where the
        tensors are kept or a sum is not finite (masked scores: ``-inf ⊙ 0`` counts as 0)."""
        keep = self.keep_tensors(name)
        ins = [_product_sums(v, g, keep) for v, g in entering]
        outs = [_product_sums(v, g, keep) for v, g in leaving]
        self._last = []
        tensors = (None, None)
        if keep:
            tensors = tuple(side[0][2] if side else None for side in (ins, outs))
        sums = ([s for s, _, _ in ins], [s for s, _, _ in outs])
        counts = (sum(c for _, c, _ in ins), sum(c for _, c, _ in outs))
        self._calls.append((name, kind, rule, sums, counts, tensors))
        self._records = None

    @property
    def records(self) -> dict[str, LayerRecord]:
        """The records by module name, in the order the modules were first seen."""
        if self._records is None:
            self._records = self._finish()
        return self._records

    def _finish(self) -> dict[str, LayerRecord]:
        flat = [s for *_, (ins, outs), _, _ in self._calls for s in (*ins, *outs)]
        converted = iter(_as_float64(flat))
        records: dict[str, LayerRecord] = {}
        for name, kind, rule, (ins, outs), (nonfinite_in, nonfinite_out), tensors in self._calls:
            record = LayerRecord(
                name=name,
                type=kind,
                rule=rule,
                entering=_combine([next(converted) for _ in ins]),
                leaving=_combine([next(converted) for _ in outs]),
                nonfinite_entering=nonfinite_in,
                nonfinite_leaving=nonfinite_out,
                relevance_out=tensors[0],
                relevance_in=tensors[1],
            )
            previous = records.get(name)
            records[name] = record if previous is None else _merge(previous, record)
        return records


def _raw_sums(tensor: torch.Tensor) -> torch.Tensor:
    """Per-sample sums of one tensor in its own dtype (a scalar: one sum), one reduction."""
    t = tensor.detach() if tensor.requires_grad else tensor
    if t.ndim < 2:
        return t.reshape(-1, 1).sum(dim=1)
    return t.sum(dim=tuple(range(1, t.ndim)))


def _product_sums(value: torch.Tensor, gradient: torch.Tensor, keep: bool) -> tuple:
    """``(per-sample sums of value ⊙ gradient, non-finite count, the product or None)``; 0 where
    the gradient is 0. The sums come from one batched dot product unless the product is kept
    or the dot product is not finite."""
    value, gradient = value.detach(), gradient.detach()
    if not keep and value.ndim >= 2 and value.shape == gradient.shape:
        rows = value.shape[0]
        sums = torch.bmm(value.reshape(rows, 1, -1), gradient.reshape(rows, -1, 1)).reshape(rows)
        if bool(torch.isfinite(sums).all()):
            return sums, 0, None
    product = torch.where(gradient == 0, 0.0, value * gradient)
    sums = _raw_sums(product)
    finite = bool(torch.isfinite(sums).all())
    return sums, 0 if finite else _nonfinite([product]), product.clone() if keep else None


def _as_float64(sums: list[torch.Tensor]) -> list[torch.Tensor]:
    """``sums`` as float64 tensors, converted together where they share a device."""
    if not sums:
        return []
    if len({s.device for s in sums}) > 1:
        return [s.to(torch.float64) for s in sums]
    return list(torch.cat(sums).to(torch.float64).split([s.numel() for s in sums]))


def _merge(a: LayerRecord, b: LayerRecord) -> LayerRecord:
    """One record for two calls of the same module (totals and counts add)."""

    def add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x + y if x.shape == y.shape else (x.sum() + y.sum()).reshape(1)

    def add_tensors(x, y):
        if x is None or y is None or x.shape != y.shape:
            return x if y is None else y
        return x + y

    return LayerRecord(
        name=a.name,
        type=a.type,
        rule=a.rule,
        entering=add(a.entering, b.entering),
        leaving=add(a.leaving, b.leaving),
        nonfinite_entering=a.nonfinite_entering + b.nonfinite_entering,
        nonfinite_leaving=a.nonfinite_leaving + b.nonfinite_leaving,
        relevance_out=add_tensors(a.relevance_out, b.relevance_out),
        relevance_in=add_tensors(a.relevance_in, b.relevance_in),
        calls=a.calls + b.calls,
    )


@dataclass(frozen=True)
class Violation:
    """A module that created or lost relevance beyond the tolerance, or produced NaN/inf.

    ``kind`` is ``"created"``, ``"lost"`` or ``"non-finite"``; ``relative`` is the largest
    per-sample |entering − leaving| / max(|entering|, |leaving|).
    """

    name: str
    kind: str
    relative: float
    entering: list[float]
    leaving: list[float]


@dataclass(frozen=True)
class ConservationReport:
    """Modules that break conservation, in backward order, with the tolerance used."""

    violations: list[Violation]
    tolerance: float

    @property
    def ok(self) -> bool:
        """True when no module breaks conservation."""
        return not self.violations

    @property
    def names(self) -> list[str]:
        """Names of the offending modules."""
        return [v.name for v in self.violations]

    def __str__(self) -> str:
        if self.ok:
            return f"relevance conserved in every layer (tolerance {self.tolerance:g})"
        layers = sum(v.name != OUTSIDE_MODULES for v in self.violations)
        outside = len(self.violations) - layers
        parts = [f"{layers} layer(s)"] if layers else []
        parts += ["operations outside modules"] if outside else []
        lines = [f"{' and '.join(parts)} break conservation:"]
        lines += [f"  {v.name}: {v.kind} (relative {v.relative:.3g})" for v in self.violations]
        return "\n".join(lines)


#: name of the violation that operations outside modules cause (see ``outside_modules``)
OUTSIDE_MODULES = "(outside modules)"


def outside_modules(
    records: dict[str, LayerRecord],
    relevance: torch.Tensor,
    seed: torch.Tensor,
    tolerance: float = 1e-5,
    floor: float = 1e-12,
) -> Violation | None:
    """Relevance created or lost by operations that are no module (so no rule sees them).

    Per sample, the input total should be the seed's total minus what the modules absorbed:
    ``unaccounted = sum(relevance) - (sum(seed) - sum of the records' absorbed)``. A residual
    ``a + b`` written in ``forward`` copies its relevance into both branches (created); the
    usual fix is a canonizer that turns the addition into a module with a rule. Flagged when
    ``|unaccounted|`` exceeds ``tolerance`` relative to the larger of the two totals.
    """
    started = _sample_sums(seed)
    arrived = _sample_sums(relevance)
    absorbed = torch.zeros_like(started)
    for record in records.values():
        if record.absorbed.shape == absorbed.shape:
            absorbed = absorbed + record.absorbed
        else:
            absorbed = absorbed + record.absorbed.sum()
    unaccounted = arrived - (started - absorbed)
    if not bool(torch.isfinite(unaccounted).all()):
        return None  # the modules' records already name the non-finite values
    scale = torch.maximum(started.abs(), arrived.abs())
    relative = torch.where(scale < floor, torch.zeros_like(scale), unaccounted.abs() / scale)
    worst = int(relative.argmax())
    if float(relative[worst]) <= tolerance:
        return None
    kind = "created" if float(unaccounted[worst]) > 0 else "lost"
    return Violation(
        OUTSIDE_MODULES, kind, float(relative[worst]), started.tolist(), arrived.tolist()
    )


def conservation_report(
    records: dict[str, LayerRecord],
    tolerance: float = 1e-5,
    floor: float = 1e-12,
    *,
    relevance: torch.Tensor | None = None,
    seed: torch.Tensor | None = None,
) -> ConservationReport:
    """Flag each module whose leaving total differs from its entering total by more than
    ``tolerance`` relative to the larger of the two (per sample; totals below ``floor`` count as
    zero), and each module with non-finite relevance. Given the input ``relevance`` and the
    ``seed``, also relevance changed outside modules (``outside_modules``), reported last."""
    violations = []
    for name, record in records.items():
        if record.nonfinite_entering or record.nonfinite_leaving:
            violations.append(
                Violation(
                    name,
                    "non-finite",
                    float("nan"),
                    record.entering.tolist(),
                    record.leaving.tolist(),
                )
            )
            continue
        absorbed = record.absorbed
        if record.entering.shape == record.leaving.shape:
            scale = torch.maximum(record.entering.abs(), record.leaving.abs())
        else:
            scale = torch.maximum(record.entering.sum().abs(), record.leaving.sum().abs())
        relative = absorbed.abs() / scale.clamp(min=floor)
        relative = torch.where(scale < floor, torch.zeros_like(relative), relative)
        worst = int(relative.argmax())
        if float(relative[worst]) > tolerance:
            kind = "lost" if float(absorbed.reshape(-1)[worst]) > 0 else "created"
            violations.append(
                Violation(
                    name,
                    kind,
                    float(relative[worst]),
                    record.entering.tolist(),
                    record.leaving.tolist(),
                )
            )
    if relevance is not None and seed is not None:
        outside = outside_modules(records, relevance, seed, tolerance, floor)
        if outside is not None:
            violations.append(outside)
    return ConservationReport(violations, float(tolerance))


@dataclass
class LiveResult:
    """One computed explanation.

    ``relevance`` is shaped like the inputs, ``output`` is the model output of the (single)
    forward pass, ``classes`` the per-sample target classes (None for weightings), ``records`` the
    per-layer records by module name, ``generation`` the request number.
    """

    relevance: torch.Tensor
    output: torch.Tensor
    seed: torch.Tensor
    classes: torch.Tensor | None
    records: dict[str, LayerRecord]
    generation: int
    seconds: float
    rules: dict[str, str] = field(default_factory=dict)

    def conservation(self, tolerance: float = 1e-5) -> ConservationReport:
        """Layers that create or lose relevance beyond ``tolerance``, and relevance created or
        lost by operations outside modules, such as a residual ``+`` (see ``records``)."""
        return conservation_report(
            self.records, tolerance, relevance=self.relevance, seed=self.seed
        )
