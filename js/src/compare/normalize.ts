/**
 * The maths of the Compare grid's colours (pure functions, no DOM), the same as
 * `Compare.to_figure()` in Python:
 * - a cell's map m is its relevance summed over channels, `[H, W]`;
 * - difference view against reference column r: every other column shows m_c − m_r, the
 *   reference column its own map;
 * - scale s = max |value| over the group (the whole grid, the row, or the cell);
 * - the colour of value v is the colormap at (v / s + 1) / 2, and at 0.5 when s = 0.
 */
import type { Normalization } from "../types";

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

/** One shared colour scale: its value and the cells it covers (null: every row / column). */
export interface ScaleGroup {
  scale: number;
  row: number | null;
  col: number | null;
}

/** The scale of every cell (`scales[row][col]`) and one group per colour bar. */
export function groupScales(
  grid: MapGrid,
  mode: Normalization,
): { scales: number[][]; groups: ScaleGroup[] } {
  const cell = grid.map((row) => row.map(maxAbs));
  if (mode === "cell") {
    const groups = cell.flatMap((row, r) => row.map((scale, c) => ({ scale, row: r, col: c })));
    return { scales: cell, groups };
  }
  if (mode === "row") {
    const rows = cell.map((row) => Math.max(0, ...row));
    return {
      scales: cell.map((row, r) => row.map(() => rows[r] ?? 0)),
      groups: rows.map((scale, r) => ({ scale, row: r, col: null })),
    };
  }
  const all = Math.max(0, ...cell.map((row) => Math.max(0, ...row)));
  return { scales: cell.map((row) => row.map(() => all)), groups: [{ scale: all, row: null, col: null }] };
}

/** Position of value `v` on the colormap, in [0, 1]: (v / s + 1) / 2, and 0.5 when s = 0. */
export function colorPosition(v: number, s: number): number {
  if (!(s > 0) || !Number.isFinite(v)) return 0.5;
  return Math.min(1, Math.max(0, (v / s + 1) / 2));
}
