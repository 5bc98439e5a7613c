/**
 * One cell of the Compare grid (`data-role="cell"`, `data-row` = input index, `data-col` =
 * column id): the relevance map on a canvas (`data-role="heatmap"`, `data-generation` = the
 * heatmap generation it shows), a hover crosshair, the cell's scores (`data-score="<name>"`), a PNG download button
 * (`data-role="download"`) and, on demand, the perturbation curves (`data-role="curve"`).
 * The map's pixels come from `../shared/paint.ts`, the same as the Explorer's heatmap. Everything
 * here is drawn in the page; nothing asks the kernel.
 */
import { bytesOf } from "../shared/arrays";
import { paintRelevance } from "../shared/paint";
import { curvePlot } from "./curve";
import { formatScore } from "./scores";

/** Everything a cell's pixels depend on; `key` identifies it, so unchanged cells are not redrawn. */
export interface CellPicture {
  key: string;
  generation: number;
  map: Float32Array | null;
  width: number;
  height: number;
  /** Display images uint8 `[N, H, W, 3]` to blend over, in grey (null: the map alone). */
  images: DataView | ArrayBuffer | Uint8Array | null;
  palette: Uint8Array;
  scale: number;
  alpha: number;
}

export interface CellScore {
  name: string;
  label: string;
  description: string;
  value: number | null;
}

export interface CellCurve {
  fractions: number[];
  morf: number[];
  lerf: number[];
}

export interface CellView {
  readonly el: HTMLElement;
  readonly canvas: HTMLCanvasElement;
  /** Slot for the cell's own colour bar (per-cell normalisation). */
  readonly colorbarSlot: HTMLElement;
  draw(picture: CellPicture): void;
  setScores(scores: CellScore[], curve: CellCurve | null): void;
  setHover(point: [number, number] | null): void;
}

export interface CellOptions {
  row: number;
  col: number;
  title: () => string;
  onHover: (point: [number, number] | null) => void;
}

export function createCell({ row, col, title, onHover }: CellOptions): CellView {
  const el = document.createElement("div");
  el.className = "lrp-cell";
  el.dataset.role = "cell";
  el.dataset.row = String(row);
  el.dataset.col = String(col);
  el.setAttribute("role", "gridcell");
  const frame = document.createElement("div");
  frame.className = "lrp-cell-image";
  const canvas = document.createElement("canvas");
  canvas.className = "lrp-cell-canvas";
  canvas.dataset.role = "heatmap";
  const across = document.createElement("div");
  across.className = "lrp-crosshair lrp-crosshair-h";
  const down = document.createElement("div");
  down.className = "lrp-crosshair lrp-crosshair-v";
  across.hidden = true;
  down.hidden = true;
  frame.append(canvas, across, down);
  const colorbarSlot = document.createElement("div");
  colorbarSlot.className = "lrp-cell-colorbar";
  const scoresBox = document.createElement("div");
  scoresBox.className = "lrp-scores";
  const curveBox = document.createElement("div");
  curveBox.className = "lrp-curve-box";
  curveBox.hidden = true;
  const download = document.createElement("button");
  download.type = "button";
  download.className = "lrp-button lrp-download";
  download.dataset.role = "download";
  download.textContent = "PNG";
  download.title = "Download this cell as a PNG image";
  download.addEventListener("click", () => {
    download.setAttribute("aria-label", `Download ${title()} as PNG`);
    canvas.toBlob((blob) => {
      if (!blob) return;
      const link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = `${title().replace(/[^\w.-]+/g, "_")}.png`;
      link.click();
      setTimeout(() => URL.revokeObjectURL(link.href), 1000);
    }, "image/png");
  });
  el.append(frame, colorbarSlot, scoresBox, curveBox, download);

  let drawnKey = "";
  let size: [number, number] = [0, 0];
  let curve: CellCurve | null = null;

  canvas.addEventListener("mousemove", (event) => {
    const [w, h] = size;
    if (w === 0 || h === 0) return;
    const rect = canvas.getBoundingClientRect();
    const x = Math.min(w - 1, Math.max(0, Math.floor(((event.clientX - rect.left) / rect.width) * w)));
    const y = Math.min(h - 1, Math.max(0, Math.floor(((event.clientY - rect.top) / rect.height) * h)));
    onHover([x, y]);
  });
  canvas.addEventListener("mouseleave", () => onHover(null));

  const showCurve = (): void => {
    curveBox.replaceChildren(...(curve ? [curvePlot(curve.fractions, curve.morf, curve.lerf)] : []));
  };

  return {
    el,
    canvas,
    colorbarSlot,
    draw(picture) {
      if (picture.key === drawnKey) return;
      drawnKey = picture.key;
      const { map, width, height, palette, scale, alpha } = picture;
      canvas.dataset.generation = String(picture.generation);
      size = [width, height];
      if (map === null || map.length !== width * height) {
        canvas.width = 0;
        canvas.height = 0;
        return;
      }
      canvas.width = width;
      canvas.height = height;
      const context = canvas.getContext("2d", { willReadFrequently: true });
      if (!context) return;
      const pixels = context.createImageData(width, height);
      const image = picture.images ? bytesOf(picture.images) : null;
      // Without an input under it (the "heatmap" view), the map alone: opacity 1.
      paintRelevance(pixels.data, map, {
        scale,
        palette,
        alpha: image ? alpha : 1,
        under: image,
        underOffset: row * width * height * 3,
      });
      context.putImageData(pixels, 0, 0);
      el.dataset.draws = String(Number(el.dataset.draws ?? "0") + 1);
    },
    setScores(scores, nextCurve) {
      curve = nextCurve;
      scoresBox.replaceChildren(
        ...scores.map(({ name, label, description, value }) => {
          const entry = document.createElement("div");
          entry.className = "lrp-score";
          entry.title = description;
          const name_ = document.createElement("span");
          name_.className = "lrp-score-name";
          name_.textContent = label;
          const shown = name === "faithfulness" ? document.createElement("button") : document.createElement("span");
          shown.className = "lrp-score-value";
          shown.dataset.score = name;
          shown.textContent = formatScore(value);
          if (shown instanceof HTMLButtonElement) {
            shown.type = "button";
            shown.disabled = curve === null;
            shown.setAttribute("aria-expanded", String(!curveBox.hidden));
            shown.setAttribute("aria-label", `${label} ${shown.textContent}: show the perturbation curves`);
            shown.addEventListener("click", () => {
              curveBox.hidden = !curveBox.hidden;
              shown.setAttribute("aria-expanded", String(!curveBox.hidden));
              showCurve();
            });
          }
          entry.append(name_, shown);
          return entry;
        }),
      );
      if (curve === null) curveBox.hidden = true;
      if (!curveBox.hidden) showCurve();
    },
    setHover(point) {
      const [w, h] = size;
      across.hidden = down.hidden = point === null || w === 0;
      if (point === null || w === 0) return;
      down.style.left = `${((point[0] + 0.5) / w) * 100}%`;
      across.style.top = `${((point[1] + 0.5) / h) * 100}%`;
    },
  };
}
