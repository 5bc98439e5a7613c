/**
 * Rule panel for the selected layers: rule picker (`data-role="rule-select"`), the rule's
 * parameter controls (see `params.ts`), scope (the selection, or every layer of the first
 * selected layer's type), reset to the composite's rule (`data-role="reset"`), and the composite
 * preset picker (`data-role="composite-select"`, keeping or clearing overrides).
 * Parameter edits are debounced; the kernel validates them.
 */

import { button, labelled, select, setOptions } from "../shared/controls";
import { type ParamControl, paramControl } from "../shared/params";
import type { LayerInfo, RuleState } from "./types";

const DEBOUNCE_MS = 25;

export interface RulePanelOptions {
  catalog: Record<string, { params: Record<string, unknown> }>;
  composites: string[];
  /** `scope`: every layer of class `type` (within the subtree `within`, "" for the model). */
  onAssign: (
    names: string[],
    rule: string,
    params: Record<string, unknown>,
    scope?: { type: string; within: string },
  ) => void;
  onReset: (names: string[]) => void;
  onComposite: (name: string, keepOverrides: boolean) => void;
}

export interface RulePanel {
  readonly el: HTMLElement;
  /** Shows the rule of the first selected layer; keeps controls the user is editing. */
  update(selection: string[], rules: Record<string, RuleState>, composite: string): void;
}

export function createRulePanel(layers: readonly LayerInfo[], options: RulePanelOptions): RulePanel {
  const byName = new Map(layers.map((layer) => [layer.name, layer]));
  const el = document.createElement("div");
  el.className = "lrp-panel lrp-rules";
  const title = document.createElement("div");
  title.className = "lrp-panel-title";
  const ruleSelect = select(
    "rule-select",
    Object.keys(options.catalog).map((name) => [name, name]),
  );
  const scope = select("scope", [["selection", "selected layers"]]);
  const paramsBox = document.createElement("div");
  paramsBox.className = "lrp-params-box";
  const reset = button("reset", "Reset to composite", () => options.onReset(selection));
  const compositeSelect = select(
    "composite-select",
    options.composites.map((name) => [name, name]),
  );
  const keep = document.createElement("input");
  keep.type = "checkbox";
  keep.checked = true;
  keep.dataset.role = "keep-overrides";
  compositeSelect.addEventListener("change", () => options.onComposite(compositeSelect.value, keep.checked));
  const rows = document.createElement("div");
  rows.className = "lrp-rule-body";
  rows.append(labelled("Rule", ruleSelect), labelled("Apply to", scope), paramsBox, reset);
  el.append(title, rows, labelled("Composite", compositeSelect), labelled("keep overrides", keep));

  let selection: string[] = [];
  let controls: ParamControl[] = [];
  let shownRule = "";
  let timer: number | undefined;

  const paramValues = (): Record<string, unknown> => {
    const values: Record<string, unknown> = {};
    for (const control of controls) values[control.name] = control.value();
    if ("alpha" in values && "beta" in (options.catalog[shownRule]?.params ?? {})) {
      values.beta = typeof values.alpha === "number" ? Number((values.alpha - 1).toPrecision(6)) : values.alpha;
    }
    return values;
  };

  const send = (): void => {
    window.clearTimeout(timer);
    timer = undefined;
    el.dataset.pending = "false";
    const first = byName.get(selection[0] ?? "");
    const bulk = scope.value.startsWith("type:") && first;
    const within = scope.value.slice("type:".length);
    options.onAssign(selection, ruleSelect.value, paramValues(), bulk ? { type: first.type, within } : undefined);
  };
  const sendSoon = (): void => {
    el.dataset.pending = "true";
    window.clearTimeout(timer);
    timer = window.setTimeout(send, DEBOUNCE_MS);
  };

  const buildControls = (rule: string, values: Record<string, unknown>): void => {
    shownRule = rule;
    controls = [];
    paramsBox.replaceChildren();
    const defaults = options.catalog[rule]?.params ?? {};
    for (const name of Object.keys(defaults)) {
      const control = paramControl(name, sendSoon);
      if (!control) continue;
      control.set(name in values ? values[name] : defaults[name]);
      controls.push(control);
      paramsBox.append(control.el);
    }
  };

  ruleSelect.addEventListener("change", () => {
    const previous = paramValues();
    buildControls(ruleSelect.value, previous);
    send();
  });

  return {
    el,
    update(names, rules, composite) {
      selection = names;
      compositeSelect.value = composite;
      const leaves = names.filter((name) => rules[name]);
      const first = names[0];
      const state = leaves[0] !== undefined ? rules[leaves[0]] : undefined;
      el.classList.toggle("lrp-empty", names.length === 0);
      title.textContent =
        names.length === 0
          ? "Select a layer to change its rule"
          : names.length === 1
            ? `Rule of ${first}`
            : `Rule of ${names.length} layers`;
      const layer = byName.get(first ?? "");
      const bulk: Array<[string, string]> = [];
      if (layer) {
        // every layer of this type in each enclosing subtree, then in the whole model
        for (let parent = layer.parent; parent !== ""; parent = byName.get(parent)?.parent ?? "") {
          bulk.push([`type:${parent}`, `every ${layer.type} in ${parent}`]);
        }
        bulk.push(["type:", `every ${layer.type}`]);
      }
      setOptions(scope, [["selection", names.length > 1 ? "selected layers" : "this layer"], ...bulk]);
      if (!state) return;
      if (timer !== undefined) return; // an edit is about to be sent: keep the user's values
      if (state.rule !== shownRule || ruleSelect.value !== state.rule) {
        ruleSelect.value = state.rule;
        buildControls(state.rule, state.params);
      } else {
        for (const control of controls) {
          if (control.name in state.params) control.set(state.params[control.name]);
        }
      }
      reset.disabled = !leaves.some((name) => rules[name]?.origin === "override");
    },
  };
}
