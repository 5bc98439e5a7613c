"""The Compare page's colour maths (``js/src/compare/normalize.ts``) against independent numpy
formulas and against the Python figure export (``lrp_widgets._compare_figure``), so the page and
``Compare.to_figure()`` colour a grid the same way.

The module runs in Node.js on the same inputs (see ``conftest.run_ts``). Formulas
(see the contract in K_compare_contract / the module docstring):
- m = relevance summed over channels;
- difference view against column r: m_c - m_r for c != r, m_r itself for r;
- s = max |value| over the group (grid / row / cell);
- colour position of v: clip((v / s + 1) / 2, 0, 1), 0.5 when s = 0.
"""

from __future__ import annotations

import numpy as np

from lrp_widgets._compare_figure import cell_maps, cell_scales

# Reads cases from stdin, answers what normalize.ts computes for each.
RUNNER = """
import { channelSum, colorPosition, differenceMaps, groupScales } from "./module.mjs";
let text = "";
for await (const chunk of process.stdin) text += chunk;
const out = JSON.parse(text).map(({ relevance, shape, reference, mode }) => {
  const [n, k] = [shape[0], relevance.length];
  const grid = Array.from({ length: n }, (_, row) =>
    relevance.map((values) => channelSum(Float32Array.from(values), shape, row)));
  const shown = differenceMaps(grid, reference);
  const { scales, groups } = groupScales(shown, mode);
  const positions = shown.map((row, r) =>
    row.map((map, c) => Array.from(map, (v) => colorPosition(v, scales[r][c]))));
  return { maps: grid.map((row) => row.map((m) => Array.from(m))),
           shown: shown.map((row) => row.map((m) => Array.from(m))), scales, groups, positions, k };
});
process.stdout.write(JSON.stringify(out));
"""


def reference_colours(relevance: list[np.ndarray], reference: int, mode: str):
    """Independent numpy version of the formulas in the module docstring."""
    maps = np.stack([r.astype(np.float64).sum(axis=1) for r in relevance], axis=1)  # [N, K, H, W]
    shown = maps.copy()
    if reference >= 0:
        for c in range(maps.shape[1]):
            if c != reference:
                shown[:, c] = maps[:, c] - maps[:, reference]
    cell = np.abs(shown).max(axis=(2, 3))  # [N, K]
    if mode == "grid":
        scales = np.full_like(cell, cell.max())
    elif mode == "row":
        scales = np.repeat(cell.max(axis=1, keepdims=True), cell.shape[1], axis=1)
    else:
        scales = cell
    s = scales[:, :, None, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        positions = np.where(s > 0, np.clip((shown / s + 1) / 2, 0, 1), 0.5)
    return maps, shown, scales, positions


def make_case(seed: int, reference: int, mode: str, zero_column: bool = False):
    rng = np.random.default_rng(seed)
    n, k, c, h, w = 3, 3, 2, 4, 5
    relevance = [rng.normal(size=(n, c, h, w)).astype(np.float32) * (1 + j) for j in range(k)]
    if zero_column:
        relevance[1][:] = 0  # a column of all-zero maps: s = 0 per cell -> the middle colour
    case = {
        "relevance": [r.reshape(-1).tolist() for r in relevance],
        "shape": [n, c, h, w],
        "reference": reference,
        "mode": mode,
    }
    return relevance, case


CASES = [
    (seed, reference, mode, zero)
    for seed, (reference, zero) in enumerate([(-1, False), (0, False), (2, False), (-1, True)])
    for mode in ("grid", "row", "cell")
]


def test_page_colours_match_formulas_and_figure(run_ts):
    inputs = [make_case(*case) for case in CASES]
    answers = run_ts("compare/normalize", RUNNER, [case for _, case in inputs])
    for (seed, reference, mode, zero), (relevance, _), answer in zip(
        CASES, inputs, answers, strict=True
    ):
        label = f"seed={seed} reference={reference} mode={mode} zero_column={zero}"
        n, k = len(answer["maps"]), answer["k"]
        h_w = relevance[0].shape[2:]
        maps, shown, scales, positions = reference_colours(relevance, reference, mode)
        got_maps = np.array(answer["maps"]).reshape(n, k, *h_w)
        got_shown = np.array(answer["shown"]).reshape(n, k, *h_w)
        got_positions = np.array(answer["positions"]).reshape(n, k, *h_w)
        np.testing.assert_allclose(got_maps, maps, rtol=1e-5, atol=1e-6, err_msg=label)
        np.testing.assert_allclose(got_shown, shown, rtol=1e-5, atol=1e-5, err_msg=label)
        np.testing.assert_allclose(answer["scales"], scales, rtol=1e-5, err_msg=label)
        np.testing.assert_allclose(got_positions, positions, atol=1e-5, err_msg=label)
        # The figure export computes the same maps and scales.
        figure_shown = cell_maps(relevance, None if reference < 0 else reference)
        np.testing.assert_allclose(got_shown, figure_shown, rtol=1e-5, atol=1e-5, err_msg=label)
        figure_scales = cell_scales(figure_shown, mode)
        np.testing.assert_allclose(answer["scales"], figure_scales, rtol=1e-5, err_msg=label)
        # One colour bar per scale: 1 for the grid, one per row, one per cell.
        expected_groups = {"grid": 1, "row": n, "cell": n * k}[mode]
        assert len(answer["groups"]) == expected_groups, label
        if zero:  # zero maps sit at the middle colour, whatever the scale (s = 0 included)
            assert np.all(got_positions[:, 1] == 0.5), label
            if mode == "cell":
                assert np.all(np.array(answer["scales"])[:, 1] == 0), label
