/** Small text formatters shared by the views. */

/** Parameter count in a compact form: `950`, `12.3k`, `4.56M`, `1.2B`. */
export function formatCount(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const units: Array<[number, string]> = [
    [1e9, "B"],
    [1e6, "M"],
    [1e3, "k"],
  ];
  for (const [scale, suffix] of units) {
    if (Math.abs(n) >= scale) {
      const value = n / scale;
      const digits = value >= 100 ? 0 : value >= 10 ? 1 : 2;
      return `${Number(value.toFixed(digits))}${suffix}`;
    }
  }
  return String(n);
}

/** Full count with thin-space thousands separators, for tooltips: `1 234 567`. */
export function formatExact(n: number): string {
  return n.toLocaleString("en-US").replace(/,/g, "\u2009");
}
