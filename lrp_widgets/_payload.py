"""Payload encoding: what the widgets send to their front end (binary arrays, colormap palettes,
the rule catalog, layer rows, predictions, health entries).

Arrays travel as ``{"dtype", "shape", "data"}`` with ``data`` raw little-endian bytes, which
ipywidgets sends as a binary buffer beside the JSON message (never base64 inside the JSON).
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import torch

from lrp_core.cmap import CMAPS
from lrp_core.live import GRADIENT, OUTSIDE_MODULES, RULES, LiveResult, parameter_names


def encode_array(array: np.ndarray | torch.Tensor) -> dict[str, Any]:
    """``array`` (float32 or uint8) as ``{"dtype", "shape", "data": bytes}`` for the front end.

    Raises
    ------
    TypeError
        the dtype is neither float32 nor uint8.
    """
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().numpy()
    if array.dtype not in (np.float32, np.uint8):
        raise TypeError(f"only float32 and uint8 arrays are sent, got {array.dtype}")
    array = np.ascontiguousarray(array)
    return {"dtype": str(array.dtype), "shape": list(array.shape), "data": array.tobytes()}


def palettes() -> dict[str, bytes]:
    """Every built-in colormap of ``lrp_core.cmap`` as 256 RGB triplets (768 bytes each)."""
    return {name: CMAPS[name].palette().tobytes() for name in CMAPS}


def display_images(inputs: torch.Tensor) -> np.ndarray:
    """Inputs ``[N, C, H, W]`` (C = 1 or 3) as uint8 RGB ``[N, H, W, 3]`` for thumbnails.

    Values are scaled from the batch's own minimum and maximum to 0..255 (a display choice, no
    model maths); other shapes give an empty ``[N, 0, 0, 3]`` array (no picture).
    """
    x = inputs.detach().to(torch.float32).cpu()
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        return np.zeros((x.shape[0], 0, 0, 3), dtype=np.uint8)
    low, high = float(x.min()), float(x.max())
    scaled = (x - low) / (high - low) if high > low else torch.zeros_like(x)
    rgb = scaled.expand(-1, 3, -1, -1).permute(0, 2, 3, 1)
    return (rgb * 255).round().clamp(0, 255).to(torch.uint8).numpy()


def heatmap_array(relevance: torch.Tensor) -> np.ndarray:
    """Relevance as float32 ``[N, C, H, W]`` (image inputs) or ``[N, 1, 1, D]`` (others)."""
    r = relevance.detach().to(torch.float32).cpu()
    if r.ndim != 4:
        r = r.reshape(r.shape[0], 1, 1, -1)
    return r.numpy()


def heatmap_message(relevance: torch.Tensor, generation: int, request: int) -> dict[str, Any]:
    """``relevance`` as a float32 array message (see :func:`heatmap_array`) with the
    ``generation`` that computed it and the page ``request`` it answers (0: from Python)."""
    message = encode_array(heatmap_array(relevance))
    message.update(generation=generation, request=request)
    return message


def rule_catalog(value_range: tuple[float, float] | None = None) -> dict[str, dict[str, Any]]:
    """Every registered rule (built-in and custom) with its parameters and their defaults.

    Parameters
    ----------
    value_range : tuple of float, optional
        ``(min, max)`` of the inputs: offered as the ``ZBox`` bounds ``low``/``high``, which have
        no default of their own.

    Returns
    -------
    dict
        ``{name: {"params": {param: default or None}}}``; ``"Gradient"`` (no rule) comes first.
        Defaults that are not plain numbers, strings or None are given as None.
    """
    catalog: dict[str, dict[str, Any]] = {GRADIENT: {"params": {}}}
    for name, cls in sorted(RULES.items()):
        signature = inspect.signature(cls.__init__)
        params = {}
        for param in parameter_names(name):
            default = signature.parameters[param].default
            plain = isinstance(default, int | float | str) or default is None
            params[param] = default if plain and default is not inspect.Parameter.empty else None
        catalog[name] = {"params": params}
    box = catalog.get("ZBox", {}).get("params", {})
    if value_range is not None:
        for bound, value in zip(("low", "high"), value_range, strict=True):
            if bound in box and box[bound] is None:
                box[bound] = float(value)
    return catalog


def layer_rows(description: dict[str, Any]) -> list[dict[str, Any]]:
    """The tree of ``LiveExplanation.describe()`` as rows below the root, parents first.

    Each row: ``name``, ``parent``, ``type``, ``params``, ``leaf``, ``output_shape`` (of the
    first output, or None), ``group`` (name of the run of repeated blocks the row is a member
    of, ``""`` for none; see ``lrp_core.live.repeated_groups``) and ``op`` (the operation type
    of a captured functional operation, ``""`` for modules). The calls a description lists under
    a module's ``ops`` become operation rows after that module's child modules.
    """
    rows: list[dict[str, Any]] = []

    def walk(node: dict[str, Any], parent: str) -> None:
        for child in node["children"]:
            outputs = child.get("output_shapes") or [None]
            rows.append(
                {
                    "name": child["name"],
                    "parent": parent,
                    "type": child["type"],
                    "params": child["params"],
                    "leaf": child["leaf"],
                    "output_shape": outputs[0],
                    "group": child.get("group", ""),
                    "op": child.get("op") or "",
                }
            )
            walk(child, child["name"])
        for op in node.get("ops", []):  # captured calls made directly inside the module
            rows.append(
                {
                    "name": op["name"],
                    "parent": node["name"],
                    "type": op["op"],
                    "params": 0,
                    "leaf": True,
                    "output_shape": None,
                    "group": "",
                    "op": op["op"],
                }
            )

    walk(description, "")
    return rows


def rule_states(description: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Effective rule of every leaf: ``{name: {"rule", "params", "origin"}}``."""
    states: dict[str, dict[str, Any]] = {}

    def walk(node: dict[str, Any]) -> None:
        rule = node.get("rule")
        if rule is not None:
            states[node["name"]] = {
                "rule": rule["name"],
                "params": rule["params"],
                "origin": rule["origin"],
            }
        for child in node["children"]:
            walk(child)

    walk(description)
    return states


def top_predictions(output: torch.Tensor, k: int) -> list[list[list[float]]]:
    """Per sample, the ``k`` most probable classes (softmax of ``output``) as ``[class, p]``."""
    if output.ndim != 2:
        return []
    probabilities = output.softmax(dim=1)
    values, indices = probabilities.topk(min(k, output.shape[1]), dim=1)
    return [
        [[int(i), float(v)] for i, v in zip(row_i, row_v, strict=True)]
        for row_i, row_v in zip(indices, values, strict=True)
    ]


def health_entries(result: LiveResult, tolerance: float) -> list[dict[str, Any]]:
    """Per layer (forward order): rule, per-sample relevance totals entering and leaving, and
    the kind of conservation violation beyond ``tolerance`` (``""`` if none); ``module`` True.
    Relevance created or lost outside modules (e.g. by a residual ``+`` in ``forward``) comes
    last as an entry named ``OUTSIDE_MODULES`` (seed totals entering, input totals leaving)
    with ``module`` False."""
    violations = result.conservation(tolerance).violations
    kinds = {v.name: v.kind for v in violations}
    entries = [
        {
            "name": name,
            "rule": record.rule,
            "entering": [float(v) for v in record.entering.reshape(-1)],
            "leaving": [float(v) for v in record.leaving.reshape(-1)],
            "violation": kinds.get(name, ""),
            "module": True,
        }
        for name, record in result.records.items()
    ]
    for violation in violations:
        if violation.name == OUTSIDE_MODULES:
            entries.append(
                {
                    "name": OUTSIDE_MODULES,
                    "rule": "",
                    "entering": violation.entering,
                    "leaving": violation.leaving,
                    "violation": violation.kind,
                    "module": False,
                }
            )
    return entries


def layer_map_message(result: LiveResult, name: str, k: int) -> dict[str, Any]:
    """The relevance at leaf ``name``'s output summed over channels (dim 1) as a float32 array
    message ``[N, 1, H, W]`` (``[N, 1, 1, F]`` for flat outputs), with ``name`` and per sample
    the ``k`` channels of largest relevance sum as ``[channel, sum]``; {} when ``name`` is ''
    or its tensor was not kept."""
    record = result.records.get(name) if name else None
    if record is None or record.relevance_out is None:
        return {}
    relevance = record.relevance_out.detach().to(torch.float32)
    summed = relevance.sum(dim=1, keepdim=True) if relevance.ndim > 2 else relevance[:, None]
    message = encode_array(heatmap_array(summed))
    message["name"] = name
    message["top_channels"] = [
        [[c, v] for c, v in record.top_channels(k, sample)] for sample in range(relevance.shape[0])
    ]
    return message
