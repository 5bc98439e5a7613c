/**
 * Heatmap view: the relevance of one sample overlaid on a grey copy of its input, drawn on a
 * canvas (`data-role="heatmap"`) by `../shared/paint.ts`, as a Compare cell draws it. Colormap (`data-role="cmap-select"`, palettes sent by the kernel),
 * opacity, normalisation (99th percentile or maximum of |R|, symmetric around 0), channel
 * reduction and smooth/pixelated display are applied here, without the kernel. Hovering shows
 * the value.
 */
import { bytesOf, float32Of } from "../shared/arrays";
import { labelled, opacitySlider, select } from "../shared/controls";
import { paintRelevance } from "../shared/paint";
import { scaleOf } from "../shared/scale";
import type { ArrayMessage, PaletteData } from "../shared/types";

export interface HeatmapView {
  readonly el: HTMLElement;
  setImages(images: ArrayMessage): void;
  setRelevance(relevance: ArrayMessage): void;
  setSample(sample: number): void;
  /** Milliseconds the last redraw took. */
  readonly lastDrawMs: number;
}

type Reduce = "sum" | "abs" | "positive";

export function createHeatmap(palettes: Record<string, PaletteData>): HeatmapView {
  const el = document.createElement("div");
  el.className = "lrp-panel lrp-heatmap";
  const canvas = document.createElement("canvas");
  canvas.dataset.role = "heatmap";
  canvas.className = "lrp-canvas";
  const hover = document.createElement("div");
  hover.className = "lrp-hover";
  hover.dataset.role = "hover-value";
  hover.textContent = "\u00a0";

  const names = Object.keys(palettes);
  const cmap = select(
    "cmap-select",
    names.map((n) => [n, n]),
  );
  cmap.value = names.includes("bwr") ? "bwr" : (names[0] ?? "");
  const opacity = opacitySlider(0.85);
  const norm = select("norm-select", [
    ["percentile", "99th percentile"],
    ["symmetric", "symmetric max"],
  ]);
  const reduce = select("reduce-select", [
    ["sum", "channel sum"],
    ["abs", "sum of |R|"],
    ["positive", "positive part"],
  ]);
  const smooth = document.createElement("input");
  smooth.type = "checkbox";
  smooth.dataset.role = "smooth";
  const controls = document.createElement("div");
  controls.className = "lrp-heatmap-controls";
  controls.append(
    labelled("Colormap", cmap),
    labelled("Opacity", opacity),
    labelled("Scale", norm),
    labelled("Channels", reduce),
    labelled("smooth", smooth),
  );
  el.append(canvas, hover, controls);

  let images: ArrayMessage | null = null;
  let relevance: ArrayMessage | null = null;
  let sample = 0;
  let map: Float32Array | null = null; // reduced relevance of the sample, H*W
  let bound = 1;
  let width = 0;
  let height = 0;
  let lastDrawMs = 0;

  const paletteBytes = (): Uint8Array => {
    const data = palettes[cmap.value];
    return data ? bytesOf(data) : new Uint8Array(768);
  };

  const reduceSample = (): void => {
    map = null;
    if (!relevance) return;
    const [n = 0, c = 1, h = 1, w = 1] = relevance.shape;
    if (sample >= n) return;
    const values = float32Of(relevance);
    const size = h * w;
    const out = new Float32Array(size);
    const mode = reduce.value as Reduce;
    for (let ch = 0; ch < c; ch++) {
      const base = (sample * c + ch) * size;
      for (let i = 0; i < size; i++) {
        const v = values[base + i] ?? 0;
        out[i] = (out[i] ?? 0) + (mode === "abs" ? Math.abs(v) : mode === "positive" ? Math.max(v, 0) : v);
      }
    }
    map = out;
    width = w;
    height = h;
    computeBound();
  };

  const computeBound = (): void => {
    if (!map) return;
    bound = scaleOf([map], norm.value === "percentile" ? "percentile" : "max");
    if (!(bound > 0)) bound = 1;
  };

  const draw = (): void => {
    const start = performance.now();
    if (!map) return;
    canvas.width = width;
    canvas.height = height;
    const context = canvas.getContext("2d", { willReadFrequently: true });
    if (!context) return;
    const pixels = context.createImageData(width, height);
    const image = images && images.shape[1] === height && images.shape[2] === width ? bytesOf(images.data) : null;
    paintRelevance(pixels.data, map, {
      scale: bound,
      palette: paletteBytes(),
      alpha: Number(opacity.value),
      under: image,
      underOffset: sample * width * height * 3,
    });
    context.putImageData(pixels, 0, 0);
    canvas.classList.toggle("lrp-smooth", smooth.checked);
    lastDrawMs = performance.now() - start;
    el.dataset.drawMs = lastDrawMs.toFixed(2);
    el.dataset.draws = String(Number(el.dataset.draws ?? "0") + 1);
  };

  cmap.addEventListener("change", draw);
  opacity.addEventListener("input", draw);
  smooth.addEventListener("change", draw);
  norm.addEventListener("change", () => {
    computeBound();
    draw();
  });
  reduce.addEventListener("change", () => {
    reduceSample();
    draw();
  });
  canvas.addEventListener("mouseleave", () => {
    hover.textContent = "\u00a0";
  });
  canvas.addEventListener("mousemove", (event) => {
    if (!map) return;
    const rect = canvas.getBoundingClientRect();
    const x = Math.floor(((event.clientX - rect.left) / rect.width) * width);
    const y = Math.floor(((event.clientY - rect.top) / rect.height) * height);
    const value = map[y * width + x];
    hover.textContent = value === undefined ? "\u00a0" : `(${x}, ${y}) R = ${value.toPrecision(3)}`;
  });

  return {
    el,
    get lastDrawMs() {
      return lastDrawMs;
    },
    setImages(next) {
      images = next;
      draw();
    },
    setRelevance(next) {
      relevance = next;
      reduceSample();
      draw();
    },
    setSample(next) {
      sample = next;
      reduceSample();
      draw();
    },
  };
}
