"""The one overlay blend of both widgets (``js/src/shared/paint.ts``) against an independent
numpy version of the formula in its docstring.

Pixel i, channel ch (alpha byte 255):
- position p = clip((v / s + 1) / 2, 0, 1), 0.5 when s <= 0 or v is not finite;
- colour = palette[floor(255 p)];
- grey = (R + G + B) / 3 of the input pixel (255 without an input);
- out = round_half_even((1 - alpha) grey + alpha colour).

The module runs in Node.js on the same inputs (see ``conftest.run_ts``); the browser test
``tests/browser/test_same_pixels.py`` checks that the Explorer and the Compare both paint with it.
"""

from __future__ import annotations

import numpy as np
import pytest

# Reads cases from stdin, answers the RGBA bytes paintRelevance writes for each.
RUNNER = """
import { paintRelevance } from "./module.mjs";
let text = "";
for await (const chunk of process.stdin) text += chunk;
const out = JSON.parse(text).map(({ map, scale, palette, alpha, under, underOffset }) => {
  const values = Float32Array.from(map, (v) => (v === null ? NaN : v));
  const pixels = new Uint8ClampedArray(values.length * 4);
  paintRelevance(pixels, values, {
    scale,
    palette: Uint8Array.from(palette),
    alpha,
    under: under === null ? null : Uint8Array.from(under),
    underOffset,
  });
  return Array.from(pixels);
});
process.stdout.write(JSON.stringify(out));
"""


def reference_paint(case: dict) -> np.ndarray:
    """RGBA bytes ``[n, 4]`` of the formulas in the module docstring, in float64."""
    values = np.array([np.nan if v is None else v for v in case["map"]], dtype=np.float32)
    values = values.astype(np.float64)
    scale = case["scale"]
    palette = np.array(case["palette"], dtype=np.float64).reshape(256, 3)
    with np.errstate(invalid="ignore", divide="ignore"):
        position = np.clip((values / scale + 1) / 2, 0, 1)
    position = np.where(np.isfinite(values) & (scale > 0), position, 0.5)
    colour = palette[np.floor(position * 255).astype(int)]
    n = len(values)
    if case["under"] is None:
        grey = np.full(n, 255.0)
    else:
        start = case["underOffset"]
        image = np.array(case["under"], dtype=np.float64)[start : start + 3 * n].reshape(n, 3)
        grey = image.sum(axis=1) / 3
    alpha = case["alpha"]
    rgb = np.clip(np.rint((1 - alpha) * grey[:, None] + alpha * colour), 0, 255)
    return np.concatenate([rgb, np.full((n, 1), 255.0)], axis=1).astype(np.uint8)


def make_case(rng, n, scale, alpha, with_image, offset_pixels=0):
    palette = rng.integers(0, 256, size=768)
    values = rng.normal(scale=2.0, size=n).astype(np.float32)
    map_ = [float(v) for v in values]
    if n > 4:
        map_[1] = None  # NaN: the middle of the colormap
        map_[2] = 50.0  # far beyond +s: the top colour
        map_[3] = -50.0  # far beyond -s: the bottom colour
    under = None
    if with_image:
        under = [int(b) for b in rng.integers(0, 256, size=3 * (n + offset_pixels))]
    return {
        "map": map_,
        "scale": scale,
        "palette": [int(b) for b in palette],
        "alpha": alpha,
        "under": under,
        "underOffset": 3 * offset_pixels,
    }


def test_paint_matches_the_formula(run_ts):
    rng = np.random.default_rng(7)
    cases = [
        make_case(rng, 64, 1.5, 0.6, with_image=True),
        make_case(rng, 64, 1.5, 0.85, with_image=True, offset_pixels=64),  # second sample
        make_case(rng, 64, 0.7, 0.0, with_image=True),  # the grey input alone
        make_case(rng, 64, 0.7, 1.0, with_image=True),  # the map alone
        make_case(rng, 64, 2.0, 0.85, with_image=False),  # over white
        make_case(rng, 64, 0.0, 0.5, with_image=True),  # s = 0: the middle colour
        make_case(rng, 3, 1.0, 0.35, with_image=True),
    ]
    replies = run_ts("shared/paint", RUNNER, cases)
    for case, reply in zip(cases, replies, strict=True):
        got = np.array(reply, dtype=np.uint8).reshape(-1, 4)
        np.testing.assert_array_equal(got, reference_paint(case))


@pytest.mark.parametrize("alpha", [0.3, 0.85])
def test_hue_comes_from_the_colormap_alone(run_ts, alpha):
    """Inputs of different colours but the same R + G + B give the same overlay: a red object
    under no relevance does not turn the overlay towards the positive end of ``bwr``."""
    rng = np.random.default_rng(3)
    palette = [int(b) for b in rng.integers(0, 256, size=768)]
    map_ = [0.0, 0.4, -0.9, 2.0]
    red, green, grey, mixed = [255, 0, 0], [0, 255, 0], [85, 85, 85], [10, 200, 45]
    cases = [
        {"map": map_, "scale": 1.0, "palette": palette, "alpha": alpha, "under": image * 4}
        | {"underOffset": 0}
        for image in (red, green, grey, mixed)
    ]
    replies = run_ts("shared/paint", RUNNER, cases)
    assert replies[0] == replies[1] == replies[2] == replies[3]
    colours = np.array(replies[0], dtype=np.uint8).reshape(-1, 4)
    assert len({tuple(pixel) for pixel in colours}) == 4  # four values, four colours
