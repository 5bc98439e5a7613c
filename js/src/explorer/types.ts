/**
 * Shapes of the traits `lrp_widgets.Explorer` syncs to the page, and the commands the page sends.
 * `tests/js/test_trait_contract.py` checks `ExplorerTraits` against the Python widget's synced
 * traits.
 */
import type { ArrayMessage, PaletteData, WidgetStatus } from "../shared/types";

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

/** Synced traits of `lrp_widgets.Explorer`. */
export interface ExplorerTraits {
  model_name: string;
  total_params: number;
  layers: LayerInfo[];
  rules: Record<string, RuleState>;
  catalog: Record<string, { params: Record<string, unknown> }>;
  composites: string[];
  composite: string;
  palettes: Record<string, PaletteData>;
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
  status: WidgetStatus;
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
