/**
 * Shapes of the traits the Python side syncs to the front end.
 * Keep in step with `lrp_widgets/explorer.py`.
 */

/** One module of the model, as listed by `Explorer.layers` (pre-order, parents first). */
export interface LayerInfo {
  /** Qualified module name as in `model.named_modules()`, e.g. `"features.0"`. */
  name: string;
  /** Qualified name of the parent module; `""` for children of the root model. */
  parent: string;
  /** Class name of the module, e.g. `"Conv2d"`. */
  type: string;
  /** Number of parameter elements in the module and all its descendants. */
  params: number;
}

/** Lifecycle of the widget as reported by the kernel. */
export type ExplorerStatus = "ready" | "computing" | "error";

/** Synced traits of `lrp_widgets.Explorer`. */
export interface ExplorerTraits {
  model_name: string;
  total_params: number;
  layers: LayerInfo[];
  selected: string[];
  status: ExplorerStatus;
  error: string;
}
