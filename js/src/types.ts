/**
 * Shapes of the traits the Python side syncs to the front end.
 * Keep in step with `lrp_widgets/explorer.py` and `lrp_widgets/_transport.py`.
 */

/** One module of the model (pre-order, parents first). */
export interface LayerInfo {
  /** Qualified module name as in `model.named_modules()`, e.g. `"features.0"`. */
  name: string;
  /** Qualified name of the parent module; `""` for children of the root model. */
  parent: string;
  /** Class name of the module, e.g. `"Conv2d"`. */
  type: string;
  /** Number of parameter elements in the module and all its descendants. */
  params: number;
  /** True for modules without children (the ones that get rules). */
  leaf: boolean;
  /** Shape of the first output in the recorded forward pass, or null. */
  output_shape: number[] | null;
}

/** Where a layer's effective rule comes from. */
export type RuleOrigin = "composite" | "override" | "gradient" | "fallback";

export interface RuleState {
  rule: string;
  params: Record<string, unknown>;
  origin: RuleOrigin;
}

/** A binary array: raw bytes with dtype and shape beside them. */
export interface ArrayMessage {
  dtype: "float32" | "uint8";
  shape: number[];
  data: DataView | ArrayBuffer | Uint8Array;
}

export interface HeatmapMessage extends ArrayMessage {
  generation: number;
  request: number;
  classes: number[] | null;
}

/** Channel-summed relevance at one layer's output, with each sample's top channels. */
export interface LayerMapMessage extends ArrayMessage {
  name: string;
  top_channels: Array<Array<[number, number]>>;
}

export interface HealthEntry {
  name: string;
  rule: string;
  entering: number[];
  leaving: number[];
  violation: "" | "created" | "lost" | "non-finite";
  /** False for the entry of relevance changed outside modules (e.g. a residual `+`). */
  module: boolean;
}

/** Lifecycle of the widget as reported by the kernel. */
export type ExplorerStatus = "ready" | "computing" | "error";

/** Synced traits of `lrp_widgets.Explorer`. */
export interface ExplorerTraits {
  model_name: string;
  total_params: number;
  layers: LayerInfo[];
  rules: Record<string, RuleState>;
  catalog: Record<string, { params: Record<string, unknown> }>;
  composites: string[];
  composite: string;
  palettes: Record<string, DataView | ArrayBuffer | Uint8Array>;
  images: ArrayMessage;
  heatmap: HeatmapMessage;
  predictions: Array<Array<[number, number]>>;
  class_names: string[];
  health: HealthEntry[];
  selected: string[];
  target: number | null;
  sample: number;
  focus_layer: string;
  /** Empty (`{}`) without a focus layer. */
  layer_map: Partial<LayerMapMessage>;
  status: ExplorerStatus;
  error: string;
  compute_ms: number;
  compute_count: number;
  answered: number;
}

/** Commands the page sends to the kernel (each with a request number). */
export type Command =
  | {
      type: "assign";
      names: string[];
      rule: string;
      params: Record<string, unknown>;
      scope_type?: string;
      scope_within?: string;
    }
  | { type: "reset"; names: string[] }
  | { type: "composite"; name: string; keep_overrides: boolean };

/* ---- Compare (`lrp_widgets.Compare`; keep in step with `lrp_widgets/compare.py`) ---- */

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

/** What sets a group's colour scale s: the 99th percentile of |value| (robust to a few extreme
 * pixels, which are clipped to the end colours) or the largest |value|. */
export type ScaleBy = "percentile" | "max";

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
  palettes: Record<string, DataView | ArrayBuffer | Uint8Array>;
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
  status: ExplorerStatus;
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
