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
