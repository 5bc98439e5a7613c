/**
 * The maths of the Compare grid's colours (pure functions, no DOM), the same as
 * `Compare.to_figure()` in Python:
 * - a cell's map m is its relevance summed over channels, `[H, W]`;
 * - difference view against reference column r: every other column shows m_c − m_r, the
 *   reference column its own map;
 * - scale s per group (the whole grid, the row, or the cell), over ALL finite values of the group:
 *   `scale_by = "percentile"` (default): the 99th percentile of |value|, the element
 *   floor(0.99 · (n − 1)) of the n finite |values| sorted ascending (as the Explorer's heatmap;
 *   numpy: `np.percentile(|v|, 99, method="lower")`), so one extreme pixel cannot wash out the
 *   rest; `"max"`: the largest |value| (both in `../shared/scale.ts`, shared with the Explorer);
 * - the colour of value v is the colormap at (v / s + 1) / 2, clipped to [0, 1] (values beyond
 *   ±s take the colormap's end colours), and at 0.5 when s = 0.
 */
import { scaleOf } from "../shared/scale";
import type { ScaleBy } from "../shared/types";
import type { Normalization } from "./types";

export { colorPosition } from "../shared/scale";

/** Maps of the grid: `grid[row][column]` (columns in display order); null where missing. */
export type MapGrid = Array<Array<Float32Array | null>>;

/** Relevance `[N, C, H, W]` of sample `row`, summed over channels: `[H * W]`. */
export function channelSum(values: Float32Array, shape: readonly number[], row: number): Float32Array {
  const [, c = 1, h = 1, w = 1] = shape;
  const size = h * w;
  const out = new Float32Array(size);
  for (let ch = 0; ch < c; ch++) {
    const base = (row * c + ch) * size;
    for (let i = 0; i < size; i++) out[i] = (out[i] ?? 0) + (values[base + i] ?? 0);
  }
  return out;
}

/** The maps shown in the difference view against display column `reference` (−1: none). */
export function differenceMaps(grid: MapGrid, reference: number): MapGrid {
  if (reference < 0) return grid;
  return grid.map((row) => {
    const base = row[reference] ?? null;
    return row.map((map, col) => {
      if (col === reference || map === null) return map;
      if (base === null || base.length !== map.length) return null;
      return map.map((v, i) => v - (base[i] ?? 0));
    });
  });
}

/** One shared colour scale: its value and the cells it covers (null: every row / column). */
export interface ScaleGroup {
  scale: number;
  row: number | null;
  col: number | null;
}

/** The scale of every cell (`scales[row][col]`) and one group per colour bar; a row's or the
 * grid's scale is taken over all values of its cells together (not from the cells' scales). */
export function groupScales(
  grid: MapGrid,
  mode: Normalization,
  by: ScaleBy = "percentile",
): { scales: number[][]; groups: ScaleGroup[] } {
  if (mode === "cell") {
    const cell = grid.map((row) => row.map((map) => scaleOf([map], by)));
    const groups = cell.flatMap((row, r) => row.map((scale, c) => ({ scale, row: r, col: c })));
    return { scales: cell, groups };
  }
  if (mode === "row") {
    const rows = grid.map((row) => scaleOf(row, by));
    return {
      scales: grid.map((row, r) => row.map(() => rows[r] ?? 0)),
      groups: rows.map((scale, r) => ({ scale, row: r, col: null })),
    };
  }
  const all = scaleOf(grid.flat(), by);
  return { scales: grid.map((row) => row.map(() => all)), groups: [{ scale: all, row: null, col: null }] };
}
