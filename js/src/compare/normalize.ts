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
 *   rest; `"max"`: the largest |value|;
 * - the colour of value v is the colormap at (v / s + 1) / 2, clipped to [0, 1] (values beyond
 *   ±s take the colormap's end colours), and at 0.5 when s = 0.
 */
import type { Normalization, ScaleBy } from "../types";

/** Quantile of |value| used by `scale_by = "percentile"`. */
export const SCALE_QUANTILE = 0.99;

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

/** Largest finite |value| of a map (0 for none). */
export function maxAbs(map: Float32Array | null): number {
  let s = 0;
  if (map === null) return s;
  for (const v of map) {
    const a = Math.abs(v);
    if (a > s && Number.isFinite(a)) s = a;
  }
  return s;
}

/** The k-th smallest element (0-based) of `values`, which is reordered in place (Hoare's
 * selection as in Wirth's `find`: O(n) on average, robust to many equal values). */
export function kthSmallest(values: Float32Array, k: number): number {
  let lo = 0;
  let hi = values.length - 1;
  while (lo < hi) {
    const pivot = values[(lo + hi) >> 1] as number;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while ((values[i] as number) < pivot) i++;
      while (pivot < (values[j] as number)) j--;
      if (i <= j) {
        const t = values[i] as number;
        values[i] = values[j] as number;
        values[j] = t;
        i++;
        j--;
      }
    }
    if (j < k) lo = i;
    if (k < i) hi = j;
  }
  return values[k] ?? 0;
}

/** The 99th percentile of the finite |values| of all `maps` together: element
 * floor(0.99 · (n − 1)) of them sorted ascending (0 for none). */
export function percentileAbs(maps: ReadonlyArray<Float32Array | null>): number {
  let n = 0;
  for (const map of maps) if (map) for (const v of map) if (Number.isFinite(v)) n++;
  if (n === 0) return 0;
  const magnitudes = new Float32Array(n);
  let i = 0;
  for (const map of maps) if (map) for (const v of map) if (Number.isFinite(v)) magnitudes[i++] = Math.abs(v);
  return kthSmallest(magnitudes, Math.floor(SCALE_QUANTILE * (n - 1)));
}

/** The scale s of a group of maps under `by` (0 when it has no finite value). */
export function scaleOf(maps: ReadonlyArray<Float32Array | null>, by: ScaleBy): number {
  if (by === "percentile") return percentileAbs(maps);
  return maps.reduce((s, map) => Math.max(s, maxAbs(map)), 0);
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

/** Position of value `v` on the colormap, in [0, 1]: (v / s + 1) / 2 clipped (values beyond ±s
 * take the end colours), and 0.5 when s = 0. */
export function colorPosition(v: number, s: number): number {
  if (!(s > 0) || !Number.isFinite(v)) return 0.5;
  return Math.min(1, Math.max(0, (v / s + 1) / 2));
}
