/**
 * Shapes of the traits `lrp_widgets.Compare` syncs to the page, and the commands the page sends.
 * `tests/js/test_trait_contract.py` checks `CompareTraits` against the Python widget's synced
 * traits.
 */
import type { ArrayMessage, PaletteData, ScaleBy, WidgetStatus } from "../shared/types";

/** A per-layer rule override of one Compare column. */
export interface ColumnOverride {
  /** The module name; `""` for an override of every layer of a type (`type`, `within`). */
  layer: string;
  rule: string;
  params: Record<string, unknown>;
  type?: string;
  within?: string;
}

/** One column of the Compare grid (a configuration), in display order. */
export interface ColumnInfo {
  /** Stable id, never reused; keys `heatmaps`, `scores` and `curves`. */
  id: number;
  name: string;
  /** Composite preset name; `""` for none (plain gradient). */
  composite: string;
  /** Editable composite parameters and their current values. */
  params: Record<string, number | string | null>;
  overrides: ColumnOverride[];
  /** The column's configuration as JSON (`lrp_core.config` format). */
  config: string;
}

export interface ScoreInfo {
  label: string;
  higher_is_better: boolean;
  /** One sentence: the score's definition. */
  description: string;
}

/** Region-perturbation curves of one column: per row, the model output after each fraction. */
export interface CurveSet {
  morf: number[][];
  lerf: number[][];
  fractions: number[];
}

/** How the colour scale is shared: the whole grid, each row, or each cell. */
export type Normalization = "grid" | "row" | "cell";

export interface SortState {
  score: string;
  column: number;
  descending: boolean;
}

/** One column's relevance with the generation and request that produced it. */
export interface ColumnHeatmap extends ArrayMessage {
  generation: number;
  request: number;
}

/** Synced traits of `lrp_widgets.Compare`. */
export interface CompareTraits {
  columns: ColumnInfo[];
  presets: string[];
  catalog: Record<string, { params: Record<string, unknown> }>;
  palettes: Record<string, PaletteData>;
  images: ArrayMessage;
  /** `{}` without masks. */
  masks: Partial<ArrayMessage>;
  /** `str(column id)` → float32 `[N, C, H, W]` relevance (channels not summed). */
  heatmaps: Record<string, ColumnHeatmap | undefined>;
  classes: number[];
  class_names: string[];
  predictions: Array<[number, number]>;
  /** score name → `str(column id)` → per row value (null: not computed or not finite). */
  scores: Record<string, Record<string, Array<number | null>>>;
  score_info: Record<string, ScoreInfo>;
  curves: Record<string, CurveSet | undefined>;
  /** `{}` when idle. */
  progress: Partial<{ task: string; done: number; total: number }>;
  normalization: Normalization;
  /** Page-owned: the colour scale of each group, 99th percentile (default) or maximum of |value|. */
  scale_by: ScaleBy;
  /** Column id of the difference reference; -1: no difference view. */
  reference: number;
  cmap: string;
  /** Page-owned: the map alone, or blended over a grey copy of the input. */
  show: "heatmap" | "overlay";
  /** `{}`: rows in input order. */
  sort: Partial<SortState>;
  status: WidgetStatus;
  error: string;
  compute_count: number;
  answered: number;
}

/** Commands the Compare page sends to the kernel (each with a request number). */
export type CompareCommand =
  | { type: "add_column"; preset: string }
  | { type: "add_column"; config: string; name?: string }
  | { type: "remove_column"; id: number }
  | { type: "move_column"; id: number; index: number }
  | { type: "set_params"; id: number; params: Record<string, unknown> }
  | { type: "set_layer_params"; id: number; layer: string; params: Record<string, unknown> }
  | { type: "compute_scores"; names: string[] };
