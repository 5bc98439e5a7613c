"""The Compare page's colour maths (``js/src/compare/normalize.ts``) against independent numpy
formulas and against the Python figure export (``lrp_widgets.compare._figure``), so the page and
``Compare.to_figure()`` colour a grid the same way.

The module runs in Node.js on the same inputs (see ``conftest.run_ts``). Formulas
(see the contract in K_compare_contract / the module docstring):
- m = relevance summed over channels;
- difference view against column r: m_c - m_r for c != r, m_r itself for r;
- s over ALL values of the group (grid / row / cell) together:
  scale_by "percentile": np.percentile(|values|, 99, method="lower"), i.e. element
  floor(0.99 (n - 1)) of the sorted |values|; scale_by "max": max |value|;
- colour position of v: clip((v / s + 1) / 2, 0, 1), 0.5 when s = 0.
"""

from __future__ import annotations

import numpy as np
import pytest

from lrp_widgets.compare._figure import cell_maps, cell_scales

# Reads cases from stdin, answers what normalize.ts computes for each.
RUNNER = """
import { channelSum, colorPosition, differenceMaps, groupScales } from "./module.mjs";
let text = "";
for await (const chunk of process.stdin) text += chunk;
const out = JSON.parse(text).map(({ relevance, shape, reference, mode, scaleBy }) => {
  const [n, k] = [shape[0], relevance.length];
  const grid = Array.from({ length: n }, (_, row) =>
    relevance.map((values) => channelSum(Float32Array.from(values), shape, row)));
  const shown = differenceMaps(grid, reference);
  const { scales, groups } = groupScales(shown, mode, scaleBy);
  const positions = shown.map((row, r) =>
    row.map((map, c) => Array.from(map, (v) => colorPosition(v, scales[r][c]))));
  return { maps: grid.map((row) => row.map((m) => Array.from(m))),
           shown: shown.map((row) => row.map((m) => Array.from(m))), scales, groups, positions, k };
});
process.stdout.write(JSON.stringify(out));
"""

# Where the outlier of the "outlier" maps sits: row 1, column 0, pixel (2, 3).
OUTLIER = (1, 0, 2, 3)


def group_scale(values: np.ndarray, scale_by: str) -> float:
    """s of one group: the 99th percentile ("lower": an element of the data) or max of |v|."""
    magnitudes = np.abs(values).ravel()
    if scale_by == "max":
        return float(magnitudes.max())
    return float(np.percentile(magnitudes, 99, method="lower"))


def reference_colours(relevance: list[np.ndarray], reference: int, mode: str, scale_by: str):
    """Independent numpy version of the formulas in the module docstring."""
    maps = np.stack([r.astype(np.float64).sum(axis=1) for r in relevance], axis=1)  # [N, K, H, W]
    shown = maps.copy()
    if reference >= 0:
        for c in range(maps.shape[1]):
            if c != reference:
                shown[:, c] = maps[:, c] - maps[:, reference]
    n, k = shown.shape[:2]
    if mode == "grid":
        scales = np.full((n, k), group_scale(shown, scale_by))
    elif mode == "row":  # over all values of the row's cells, not from the cells' scales
        scales = np.array([[group_scale(shown[i], scale_by)] * k for i in range(n)])
    else:
        scales = np.array(
            [[group_scale(shown[i, j], scale_by) for j in range(k)] for i in range(n)]
        )
    s = scales[:, :, None, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        positions = np.where(s > 0, np.clip((shown / s + 1) / 2, 0, 1), 0.5)
    return maps, shown, scales, positions


def make_case(seed: int, reference: int, mode: str, scale_by: str, kind: str):
    """Random relevance ``[N, C, H, W]`` per column; ``kind``: "normal", "zero" (column 1 all
    zero: s = 0 per cell), "outlier" (one huge pixel at OUTLIER), "ties" (few distinct values,
    many equal magnitudes) or "large" (16 x 16 maps)."""
    rng = np.random.default_rng(seed)
    n, k, c, h, w = 3, 3, 2, 4, 5
    if kind == "large":
        h = w = 16
    relevance = [rng.normal(size=(n, c, h, w)).astype(np.float32) * (1 + j) for j in range(k)]
    if kind == "zero":
        relevance[1][:] = 0
    if kind == "ties":
        relevance = [np.round(r).astype(np.float32) for r in relevance]
    if kind == "outlier":
        row, col, y, x = OUTLIER
        relevance[col][row, 0, y, x] = 1e3
    case = {
        "relevance": [r.reshape(-1).tolist() for r in relevance],
        "shape": [n, c, h, w],
        "reference": reference,
        "mode": mode,
        "scaleBy": scale_by,
    }
    return relevance, case


CASES = [
    (seed, reference, mode, scale_by, kind)
    for seed, (reference, kind) in enumerate(
        [
            (-1, "normal"),
            (0, "normal"),
            (2, "normal"),
            (-1, "zero"),
            (-1, "outlier"),
            (1, "outlier"),
            (-1, "ties"),
            (2, "large"),
        ]
    )  # fmt: skip
    for mode in ("grid", "row", "cell")
    for scale_by in ("percentile", "max")
]


@pytest.fixture(scope="module")
def answers(run_ts) -> dict[tuple, dict]:
    inputs = [make_case(*case) for case in CASES]
    replies = run_ts("compare/normalize", RUNNER, [case for _, case in inputs])
    return {
        case: (relevance, reply)
        for case, (relevance, _), reply in zip(CASES, inputs, replies, strict=True)
    }


@pytest.mark.parametrize("case", CASES, ids=lambda case: "-".join(map(str, case)))
def test_page_colours_match_formulas_and_figure(answers, case):
    seed, reference, mode, scale_by, kind = case
    relevance, answer = answers[case]
    n, k = len(answer["maps"]), answer["k"]
    h_w = relevance[0].shape[2:]
    maps, shown, scales, positions = reference_colours(relevance, reference, mode, scale_by)
    got_maps = np.array(answer["maps"]).reshape(n, k, *h_w)
    got_shown = np.array(answer["shown"]).reshape(n, k, *h_w)
    got_positions = np.array(answer["positions"]).reshape(n, k, *h_w)
    np.testing.assert_allclose(got_maps, maps, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_shown, shown, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(answer["scales"], scales, rtol=1e-5)
    np.testing.assert_allclose(got_positions, positions, atol=1e-5)
    # The figure export computes the same maps and scales.
    figure_shown = cell_maps(relevance, None if reference < 0 else reference)
    np.testing.assert_allclose(got_shown, figure_shown, rtol=1e-5, atol=1e-5)
    figure_scales = cell_scales(figure_shown, mode, scale_by)
    np.testing.assert_allclose(answer["scales"], figure_scales, rtol=1e-5)
    # One colour bar per scale: 1 for the grid, one per row, one per cell.
    expected_groups = {"grid": 1, "row": n, "cell": n * k}[mode]
    assert len(answer["groups"]) == expected_groups
    if kind == "zero":  # zero maps sit at the middle colour, whatever the scale (s = 0 included)
        assert np.all(got_positions[:, 1] == 0.5)
        if mode == "cell":
            assert np.all(np.array(answer["scales"])[:, 1] == 0)


@pytest.mark.parametrize("mode", ["grid", "row", "cell"])
@pytest.mark.parametrize("reference", [-1, 1])
def test_one_outlier_pixel_sets_the_max_scale_but_not_the_percentile(answers, mode, reference):
    # Independent of the formulas above: with "max" the outlier's group scale is the outlier's
    # |value| and every other value of the group is pale (|v| / s < 5 %); with "percentile" the
    # group's scale is the |value| of another pixel of the group (the outlier is the 1 % above)
    # and the outlier is clipped to the end colour.
    seed = next(c[0] for c in CASES if c[1:] == (reference, mode, "max", "outlier"))
    relevance, by_max = answers[(seed, reference, mode, "max", "outlier")]
    _, by_percentile = answers[(seed, reference, mode, "percentile", "outlier")]
    row, col, y, x = OUTLIER
    n, k, (h, w) = len(by_max["shown"]), by_max["k"], relevance[0].shape[2:]
    shown = np.array(by_max["shown"]).reshape(n, k, h, w)
    peak = abs(shown[row, col, y, x])
    assert peak > 900  # 1e3 plus a few normal values
    group = {"grid": shown, "row": shown[row], "cell": shown[row, col]}[mode]
    others = np.abs(group).ravel()
    others = others[~np.isclose(others, peak, rtol=1e-7)]
    assert others.size == group.size - 1
    s_max = by_max["scales"][row][col]
    s_percentile = by_percentile["scales"][row][col]
    np.testing.assert_allclose(s_max, peak, rtol=1e-6)
    assert others.max() / s_max < 0.05
    assert np.isclose(others, s_percentile, rtol=1e-6).any()
    assert s_percentile < 0.05 * s_max
    assert by_percentile["positions"][row][col][y * w + x] == 1.0  # clipped to the end colour
    assert by_max["positions"][row][col][y * w + x] == pytest.approx(
        1.0 if shown[row, col, y, x] > 0 else 0.0
    )
    # the percentile never exceeds the maximum of the same group
    scales_max, scales_percentile = np.array(by_max["scales"]), np.array(by_percentile["scales"])
    assert (scales_percentile <= scales_max * (1 + 1e-6)).all()
