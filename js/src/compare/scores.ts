/**
 * Scores of the Compare grid (pure functions, no DOM): formatting, and the row order a sort
 * asks for. Rows without a value (null, not computed) go last in either direction; ties keep
 * input order.
 */
import type { CompareTraits, SortState } from "./types";

export type Scores = CompareTraits["scores"];

/** A score as shown in a cell: three significant digits, `–` when missing. */
export function formatScore(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  if (value === 0) return "0";
  const magnitude = Math.abs(value);
  return magnitude >= 1e4 || magnitude < 1e-3 ? value.toExponential(2) : String(Number(value.toPrecision(3)));
}

/** The value of score `name` for column `column` and input `row`, or null. */
export function scoreOf(scores: Scores, name: string, column: number, row: number): number | null {
  const value = scores[name]?.[String(column)]?.[row];
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

/** Input indices `0..n-1` in the order `sort` asks for (input order without a complete sort). */
export function rowOrder(scores: Scores, sort: Partial<SortState>, n: number): number[] {
  const rows = Array.from({ length: n }, (_, i) => i);
  const { score, column, descending } = sort;
  if (score === undefined || column === undefined) return rows;
  const value = (row: number): number | null => scoreOf(scores, score, column, row);
  return rows.sort((a, b) => {
    const va = value(a);
    const vb = value(b);
    if (va === null || vb === null) return va === vb ? a - b : va === null ? 1 : -1;
    const order = descending ? vb - va : va - vb;
    return order !== 0 ? order : a - b;
  });
}
