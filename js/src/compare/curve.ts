/**
 * The region-perturbation curves of one cell (`data-role="curve"`, an SVG): the model's output
 * after removing each fraction of the input, most relevant regions first (MoRF) and least
 * relevant first (LeRF). The faithfulness score is the area between them.
 */
const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 140;
const HEIGHT = 80;
const PAD = 4;

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string>): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, value);
  return el;
}

/** An SVG plot of `morf` and `lerf` over `fractions` (all of one row). */
export function curvePlot(fractions: number[], morf: number[], lerf: number[]): SVGSVGElement {
  const root = svg("svg", {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    width: String(WIDTH),
    height: String(HEIGHT),
    role: "img",
    "aria-label": "Region perturbation: model output against the fraction of regions removed",
  });
  root.dataset.role = "curve";
  root.classList.add("lrp-curve");
  const values = [...morf, ...lerf].filter(Number.isFinite);
  const low = Math.min(0, ...values);
  const high = Math.max(low + 1e-12, ...values);
  const xMax = Math.max(1e-12, ...fractions);
  const x = (f: number): number => PAD + (f / xMax) * (WIDTH - 2 * PAD);
  const y = (v: number): number => HEIGHT - PAD - ((v - low) / (high - low)) * (HEIGHT - 2 * PAD);
  const points = (curve: number[]): string =>
    curve.map((v, i) => `${x(fractions[i] ?? 0).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
  root.append(
    svg("rect", {
      x: "0.5",
      y: "0.5",
      width: String(WIDTH - 1),
      height: String(HEIGHT - 1),
      class: "lrp-curve-frame",
    }),
    svg("polygon", {
      points: `${points(morf)} ${points(lerf).split(" ").reverse().join(" ")}`,
      class: "lrp-curve-area",
    }),
    svg("polyline", { points: points(lerf), class: "lrp-curve-lerf" }),
    svg("polyline", { points: points(morf), class: "lrp-curve-morf" }),
  );
  const title = svg("title", {});
  title.textContent = "MoRF (solid) and LeRF (dashed) curves; the faithfulness score is the area between them";
  root.append(title);
  return root;
}
