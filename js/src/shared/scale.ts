/**
 * Colour scales of relevance maps, shared by the Explorer's heatmap and the Compare grid (pure
 * functions, no DOM): the scale s of a group of maps is the 99th percentile of their finite
 * |values| (element floor(0.99 · (n − 1)) sorted ascending; numpy:
 * `np.percentile(|v|, 99, method="lower")`) or their largest |value|, and value v takes the
 * colormap at (v / s + 1) / 2, clipped to [0, 1].
 */
import type { ScaleBy } from "./types";

/** Quantile of |value| used by `scale_by = "percentile"`. */
export const SCALE_QUANTILE = 0.99;

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

/** Position of value `v` on the colormap, in [0, 1]: (v / s + 1) / 2 clipped (values beyond ±s
 * take the end colours), and 0.5 when s = 0. */
export function colorPosition(v: number, s: number): number {
  if (!(s > 0) || !Number.isFinite(v)) return 0.5;
  return Math.min(1, Math.max(0, (v / s + 1) / 2));
}
