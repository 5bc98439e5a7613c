/**
 * A colour bar (`data-role="colorbar"` canvas) for one shared scale s: the colormap from −s to
 * +s, labelled at both ends and in the middle. Drawn in the page from the kernel's palettes.
 */
import { formatScore } from "./scores";

export interface Colorbar {
  readonly el: HTMLElement;
  update(palette: Uint8Array, scale: number): void;
}

export function createColorbar(title: string): Colorbar {
  const el = document.createElement("div");
  el.className = "lrp-colorbar";
  el.title = title;
  const canvas = document.createElement("canvas");
  canvas.dataset.role = "colorbar";
  canvas.width = 256;
  canvas.height = 1;
  canvas.setAttribute("role", "img");
  const labels = document.createElement("div");
  labels.className = "lrp-colorbar-labels";
  const low = document.createElement("span");
  const mid = document.createElement("span");
  const high = document.createElement("span");
  mid.textContent = "0";
  labels.append(low, mid, high);
  el.append(canvas, labels);

  return {
    el,
    update(palette, scale) {
      const context = canvas.getContext("2d");
      if (context) {
        const pixels = context.createImageData(256, 1);
        for (let i = 0; i < 256; i++) {
          for (let ch = 0; ch < 3; ch++) pixels.data[i * 4 + ch] = palette[i * 3 + ch] ?? 0;
          pixels.data[i * 4 + 3] = 255;
        }
        context.putImageData(pixels, 0, 0);
      }
      const text = formatScore(scale);
      low.textContent = scale > 0 ? `−${text}` : "0";
      high.textContent = scale > 0 ? `+${text}` : "0";
      canvas.dataset.scale = String(scale);
      canvas.setAttribute("aria-label", `${title}: colour scale from −${text} to +${text}`);
    },
  };
}
