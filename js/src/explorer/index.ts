/**
 * Entry of the `lrp_widgets.Explorer` anywidget (bundled as `lrp_widgets/static/explorer.js`):
 * composes the header, layer tree, rule panel, inputs, heatmap, health panel and status line, and
 * wires them to the kernel (`../shared/kernel.ts`). The views in this folder are the Explorer's
 * own; what the Compare uses too lives in `../shared/`.
 *
 * Testing contract (stable): root class `lrp-explorer`; tree rows `data-layer` and `data-rule`;
 * `data-role` = `rule-select`, `heatmap`, `status` (text contains `ready` / `error`),
 * `cmap-select`; parameter controls `data-param`. The root also exposes `data-requests`
 * (messages sent to the kernel), `data-compute-count` (relevance computations in the kernel) and
 * `data-latency-ms` (last edit → heatmap drawn), for tests and benchmarks.
 */
import type { AnyWidget, RenderProps } from "@anywidget/types";
import "../shared/theme.css";
import "./explorer.css";
import { Kernel } from "../shared/kernel";
import { createStatus, plural } from "../shared/status";
import { createHeader } from "./header";
import { createHealth } from "./health";
import { createHeatmap } from "./heatmap";
import { createInputs } from "./inputs";
import { createRulePanel } from "./rules";
import { createLayerTree } from "./tree";
import type { Command, ExplorerTraits, LayerMapMessage } from "./types";

/** Traits the Explorer page writes. */
type ExplorerOwned = "selected" | "target" | "sample" | "focus_layer";

function render({ model, el }: RenderProps<ExplorerTraits>): () => void {
  const kernel = new Kernel<ExplorerTraits, Command, ExplorerOwned>(model);
  const root = document.createElement("div");
  root.className = "lrp-explorer";
  // Lumino (JupyterLab, Notebook 7) ignores its keyboard shortcuts for keys typed in here.
  root.dataset.lmSuppressShortcuts = "true";
  let editStart = 0;

  const status = createStatus();
  const search = document.createElement("input");
  search.type = "search";
  search.placeholder = "Filter layers by name or type";
  search.className = "lrp-search";
  search.dataset.role = "filter";
  const tree = createLayerTree(kernel.get("layers"), {
    onSelect: (names) => {
      kernel.set("selected", names);
      refresh();
    },
  });
  search.addEventListener("input", () => tree.filter(search.value));
  const countMessages = (): void => {
    root.dataset.requests = String(kernel.messages);
    root.dataset.busy = String(kernel.busy);
  };
  const rules = createRulePanel(kernel.get("layers"), {
    catalog: kernel.get("catalog"),
    composites: kernel.get("composites"),
    onAssign: (names, rule, params, scope) => {
      editStart = performance.now();
      const bulk = scope ? { scope_type: scope.type, scope_within: scope.within } : {};
      kernel.send({ type: "assign", names, rule, params, ...bulk });
      countMessages();
    },
    onReset: (names) => {
      editStart = performance.now();
      kernel.send({ type: "reset", names });
      countMessages();
    },
    onComposite: (name, keep) => {
      editStart = performance.now();
      kernel.send({ type: "composite", name, keep_overrides: keep });
      countMessages();
    },
  });
  const heatmap = createHeatmap(kernel.get("palettes"));
  const inputs = createInputs({
    onSample: (sample) => {
      kernel.set("sample", sample);
      countMessages();
    },
    onTarget: (target) => {
      editStart = performance.now();
      kernel.set("target", target);
      countMessages();
    },
  });
  const source = document.createElement("div");
  source.className = "lrp-source";
  source.dataset.role = "heatmap-source";
  const sourceText = document.createElement("span");
  const backToInput = document.createElement("button");
  backToInput.type = "button";
  backToInput.className = "lrp-button";
  backToInput.textContent = "Show input relevance";
  backToInput.addEventListener("click", () => kernel.set("focus_layer", ""));
  source.append(sourceText, backToInput);
  const health = createHealth((name) => {
    kernel.set("focus_layer", name);
    kernel.set("selected", [name]);
    tree.setSelected([name]);
    refresh();
  });

  const left = document.createElement("div");
  left.className = "lrp-left";
  left.append(
    createHeader({
      modelName: kernel.get("model_name"),
      totalParams: kernel.get("total_params"),
      onExpandAll: (expanded) => tree.setAllExpanded(expanded),
    }),
    search,
    tree.el,
  );
  const right = document.createElement("div");
  right.className = "lrp-right";
  right.append(inputs.el, source, heatmap.el, rules.el, health.el);
  const body = document.createElement("div");
  body.className = "lrp-body";
  body.append(left, right);
  root.append(body, status.el);
  el.append(root);

  function refresh(): void {
    const state = kernel.get("status");
    const selected = kernel.get("selected").length;
    status.update(state, [
      state === "error" ? kernel.get("error") : "",
      state === "ready" ? `last compute ${kernel.get("compute_ms").toFixed(0)} ms` : "",
      plural(kernel.get("layers").length, "layer"),
      selected > 0 ? `${selected} selected` : "",
    ]);
    rules.update(kernel.get("selected"), kernel.get("rules"), kernel.get("composite"));
  }
  const refreshInputs = (): void => {
    inputs.update({
      images: kernel.get("images"),
      sample: kernel.get("sample"),
      target: kernel.get("target"),
      predictions: kernel.get("predictions"),
      classNames: kernel.get("class_names"),
    });
    heatmap.setSample(kernel.get("sample"));
    health.update(kernel.get("health"), kernel.get("sample"));
  };
  const drawHeatmap = (): void => {
    const message = kernel.get("heatmap");
    root.dataset.computeCount = String(kernel.get("compute_count"));
    root.dataset.answered = String(kernel.get("answered"));
    root.dataset.busy = String(kernel.busy);
    if (!message?.shape || !kernel.isCurrent(message.request)) return;
    const focus = kernel.get("focus_layer");
    const map = kernel.get("layer_map");
    const layerMap = focus !== "" && map.name === focus ? (map as LayerMapMessage) : null;
    heatmap.setRelevance(layerMap ?? message);
    source.hidden = layerMap === null;
    if (layerMap) {
      const top = layerMap.top_channels[kernel.get("sample")] ?? [];
      const channels = top.map(([c, v]) => `${c} (${v.toPrecision(3)})`).join(", ");
      sourceText.textContent = `Relevance at the output of ${focus}, channels summed · top channels: ${channels}`;
    }
    root.dataset.generation = String(message.generation);
    root.dataset.drawnRequest = String(message.request);
    if (editStart > 0) {
      root.dataset.latencyMs = (performance.now() - editStart).toFixed(1);
      editStart = 0;
    }
  };

  tree.setSelected(kernel.get("selected"));
  tree.setRules(kernel.get("rules"));
  heatmap.setImages(kernel.get("images"));
  refreshInputs();
  drawHeatmap();
  refresh();
  countMessages();

  kernel.onChange(["selected"], () => {
    tree.setSelected(kernel.get("selected"));
    refresh();
  });
  kernel.onChange(["rules"], () => {
    tree.setRules(kernel.get("rules"));
    refresh();
  });
  kernel.onChange(["status", "error", "compute_ms", "composite"], refresh);
  kernel.onChange(["heatmap", "answered", "compute_count", "layer_map", "focus_layer", "sample"], drawHeatmap);
  kernel.onChange(["sample", "target", "predictions", "health", "images"], refreshInputs);

  return () => {
    kernel.dispose();
    root.remove();
  };
}

const widget: AnyWidget<ExplorerTraits> = { render };
export default widget;
