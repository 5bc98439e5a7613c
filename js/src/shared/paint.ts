/**
 * The one way both widgets turn a relevance map into pixels (pure function, no DOM), so the same
 * relevance looks the same in the Explorer's heatmap and in a Compare cell.
 *
 * Pixel i, channel ch (written into RGBA bytes, alpha 255):
 *
 *     colour = palette[floor(255 · colorPosition(map[i], s))]        (`scale.ts`)
 *     out    = (1 − α) · grey_i + α · colour[ch]
 *     grey_i = (R_i + G_i + B_i) / 3 of the input pixel under the map (255, white, without one)
 *
 * rounded to the nearest integer (half to even, as `Uint8ClampedArray` stores it).
 *
 * Why the map is blended over a GREY copy of the input, not over its colours: the hue of an
 * overlay pixel must come from the colormap alone, because the hue is what tells positive from
 * negative relevance on a diverging map. Over the input's own colours, a red object with no
 * relevance (white on `bwr`) turns pink and reads as positive relevance, a blue sky as negative,
 * and the same relevance looks different on differently coloured inputs. A grey copy keeps the
 * input's structure (its brightness) as context and leaves the colour to the relevance. The
 * plain mean of R, G and B is the grey `Compare.to_figure()` draws under its overlays too.
 */
import { colorPosition } from "./scale";

export interface PaintOptions {
  /** The colour scale s of the map (see `scale.ts`). */
  scale: number;
  /** The colormap: 256 RGB triples (768 bytes). */
  palette: Uint8Array;
  /** Opacity of the map over the input, in [0, 1] (1: the map alone). */
  alpha: number;
  /** Input pixels under the map, uint8 RGB, `map.length * 3` bytes from `underOffset`; null: a
   * white background. */
  under: Uint8Array | null;
  /** Byte offset of the map's first input pixel in `under` (e.g. sample · H · W · 3). */
  underOffset: number;
}

/** Paints `map` (H · W values) into `out` (H · W · 4 RGBA bytes, e.g. `ImageData.data`). */
export function paintRelevance(out: Uint8ClampedArray, map: ArrayLike<number>, options: PaintOptions): void {
  const { scale, palette, alpha, under, underOffset } = options;
  for (let i = 0; i < map.length; i++) {
    const k = Math.floor(colorPosition(map[i] ?? 0, scale) * 255) * 3;
    const j = underOffset + i * 3;
    const grey = under ? ((under[j] ?? 0) + (under[j + 1] ?? 0) + (under[j + 2] ?? 0)) / 3 : 255;
    for (let ch = 0; ch < 3; ch++) out[i * 4 + ch] = (1 - alpha) * grey + alpha * (palette[k + ch] ?? 0);
    out[i * 4 + 3] = 255;
  }
}
