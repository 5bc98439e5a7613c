/**
 * Entry of the `lrp_widgets.Explorer` anywidget: composes the header, layer tree, rule panel,
 * inputs, heatmap, health panel and status line, and wires them to the kernel (`transport.ts`).
 *
 * Testing contract (stable): root class `lrp-explorer`; tree rows `data-layer` and `data-rule`;
 * `data-role` = `rule-select`, `heatmap`, `status` (text contains `ready` / `error`),
 * `cmap-select`; parameter controls `data-param`. The root also exposes `data-requests`
 * (messages sent to the kernel), `data-compute-count` (relevance computations in the kernel) and
 * `data-latency-ms` (last edit → heatmap drawn), for tests and benchmarks.
 */
import type { AnyWidget, RenderProps } from "@anywidget/types";
import "./theme.css";
import "./explorer.css";
import { Transport } from "./transport";
import type { Command, ExplorerTraits, LayerMapMessage } from "./types";
import { createHeader } from "./views/header";
import { createHealth } from "./views/health";
import { createHeatmap } from "./views/heatmap";
import { createInputs } from "./views/inputs";
import { createRulePanel } from "./views/rules";
import { createStatus } from "./views/status";
import { createLayerTree } from "./views/tree";

/** Traits the Explorer page writes. */
type ExplorerOwned = "selected" | "target" | "sample" | "focus_layer";

function render({ model, el }: RenderProps<ExplorerTraits>): () => void {
  const transport = new Transport<ExplorerTraits, Command, ExplorerOwned>(model);
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
  const tree = createLayerTree(transport.get("layers"), {
    onSelect: (names) => {
      transport.set("selected", names);
      refresh();
    },
  });
  search.addEventListener("input", () => tree.filter(search.value));
  const countMessages = (): void => {
    root.dataset.requests = String(transport.messages);
    root.dataset.busy = String(transport.busy);
  };
  const rules = createRulePanel(transport.get("layers"), {
    catalog: transport.get("catalog"),
    composites: transport.get("composites"),
    onAssign: (names, rule, params, scope) => {
      editStart = performance.now();
      const bulk = scope ? { scope_type: scope.type, scope_within: scope.within } : {};
      transport.send({ type: "assign", names, rule, params, ...bulk });
      countMessages();
    },
    onReset: (names) => {
      editStart = performance.now();
      transport.send({ type: "reset", names });
      countMessages();
    },
    onComposite: (name, keep) => {
      editStart = performance.now();
      transport.send({ type: "composite", name, keep_overrides: keep });
      countMessages();
    },
  });
  const heatmap = createHeatmap(transport.get("palettes"));
  const inputs = createInputs({
    onSample: (sample) => {
      transport.set("sample", sample);
      countMessages();
    },
    onTarget: (target) => {
      editStart = performance.now();
      transport.set("target", target);
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
  backToInput.addEventListener("click", () => transport.set("focus_layer", ""));
  source.append(sourceText, backToInput);
  const health = createHealth((name) => {
    transport.set("focus_layer", name);
    transport.set("selected", [name]);
    tree.setSelected([name]);
    refresh();
  });

  const left = document.createElement("div");
  left.className = "lrp-left";
  left.append(
    createHeader({
      modelName: transport.get("model_name"),
      totalParams: transport.get("total_params"),
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
    status.update({
      status: transport.get("status"),
      error: transport.get("error"),
      computeMs: transport.get("compute_ms"),
      layerCount: transport.get("layers").length,
      selectedCount: transport.get("selected").length,
    });
    rules.update(transport.get("selected"), transport.get("rules"), transport.get("composite"));
  }
  const refreshInputs = (): void => {
    inputs.update({
      images: transport.get("images"),
      sample: transport.get("sample"),
      target: transport.get("target"),
      predictions: transport.get("predictions"),
      classNames: transport.get("class_names"),
    });
    heatmap.setSample(transport.get("sample"));
    health.update(transport.get("health"), transport.get("sample"));
  };
  const drawHeatmap = (): void => {
    const message = transport.get("heatmap");
    root.dataset.computeCount = String(transport.get("compute_count"));
    root.dataset.answered = String(transport.get("answered"));
    root.dataset.busy = String(transport.busy);
    if (!message?.shape || !transport.isCurrent(message.request)) return;
    const focus = transport.get("focus_layer");
    const map = transport.get("layer_map");
    const layerMap = focus !== "" && map.name === focus ? (map as LayerMapMessage) : null;
    heatmap.setRelevance(layerMap ?? message);
    source.hidden = layerMap === null;
    if (layerMap) {
      const top = layerMap.top_channels[transport.get("sample")] ?? [];
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

  tree.setSelected(transport.get("selected"));
  tree.setRules(transport.get("rules"));
  heatmap.setImages(transport.get("images"));
  refreshInputs();
  drawHeatmap();
  refresh();
  countMessages();

  transport.onChange(["selected"], () => {
    tree.setSelected(transport.get("selected"));
    refresh();
  });
  transport.onChange(["rules"], () => {
    tree.setRules(transport.get("rules"));
    refresh();
  });
  transport.onChange(["status", "error", "compute_ms", "composite"], refresh);
  transport.onChange(
    ["heatmap", "answered", "compute_count", "layer_map", "focus_layer", "sample"],
    drawHeatmap,
  );
  transport.onChange(["sample", "target", "predictions", "health", "images"], refreshInputs);

  return () => {
    transport.dispose();
    root.remove();
  };
}

const widget: AnyWidget<ExplorerTraits> = { render };
export default widget;
