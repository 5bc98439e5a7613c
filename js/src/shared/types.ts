/**
 * Shapes both widgets' traits are made of: binary array messages, the kernel's lifecycle status,
 * the colour-scale choice. Each widget's own traits are in `explorer/types.ts` and
 * `compare/types.ts` (kept in step with the Python widgets by `tests/js/test_trait_contract.py`).
 */

/** A binary array: raw bytes with dtype and shape beside them. */
export interface ArrayMessage {
  dtype: "float32" | "uint8";
  shape: number[];
  data: DataView | ArrayBuffer | Uint8Array;
}

/** Lifecycle of a widget as reported by the kernel. */
export type WidgetStatus = "ready" | "computing" | "error";

/** A colormap: 256 RGB triples (768 bytes), as the kernel sends them in `palettes`. */
export type PaletteData = DataView | ArrayBuffer | Uint8Array;

/** What sets a group's colour scale s: the 99th percentile of |value| (robust to a few extreme
 * pixels, which are clipped to the end colours) or the largest |value|. */
export type ScaleBy = "percentile" | "max";
