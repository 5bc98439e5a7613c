/**
 * Header of one Compare column (`data-role="column"`, `data-col` = column id): its name and
 * composite, remove / move buttons (`data-role="remove-column"`, `move-left`, `move-right`), the
 * composite's parameter controls (`data-param="<name>"`, from `../shared/params.ts` as in the
 * Explorer) and one group of controls per per-layer override. Edits go to the kernel through the callbacks;
 * the controls the user is editing keep their values when the columns trait changes.
 */

import { button } from "../shared/controls";
import { type ParamControl, paramControl } from "../shared/params";
import type { ColumnInfo, ColumnOverride } from "./types";

export interface ColumnCallbacks {
  onParams: (id: number, params: Record<string, unknown>) => void;
  onLayerParams: (id: number, layer: string, params: Record<string, unknown>) => void;
  onRemove: (id: number) => void;
  onMove: (id: number, index: number) => void;
}

export interface ColumnHeader {
  readonly el: HTMLElement;
  /** Shows `column`; with `keepValues` the parameter boxes keep what the user typed (an edit
   * of this column is still on its way, so the kernel's values are older). */
  update(column: ColumnInfo, index: number, count: number, keepValues?: boolean): void;
}

/** A group of parameter controls for `params`; `onInput` receives every current value. */
interface ParamGroup {
  readonly el: HTMLElement;
  readonly signature: string;
  set(params: Record<string, unknown>): void;
}

function paramGroup(params: Record<string, unknown>, onInput: (values: Record<string, unknown>) => void): ParamGroup {
  const el = document.createElement("div");
  el.className = "lrp-params-box";
  const controls: ParamControl[] = [];
  const values = (): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const control of controls) out[control.name] = control.value();
    // β has no control of its own: it follows α (β = α − 1), as in the Explorer's rule panel.
    if ("beta" in params && "alpha" in out) {
      out.beta = typeof out.alpha === "number" ? Number((out.alpha - 1).toPrecision(6)) : out.alpha;
    }
    return out;
  };
  for (const name of Object.keys(params)) {
    const control = paramControl(name, () => onInput(values()));
    if (control === null) continue;
    control.set(params[name]);
    controls.push(control);
    el.append(control.el);
  }
  return {
    el,
    signature: Object.keys(params).join(","),
    set(next) {
      for (const control of controls) control.set(next[control.name] ?? null);
    },
  };
}

export function createColumnHeader(id: number, callbacks: ColumnCallbacks): ColumnHeader {
  const el = document.createElement("div");
  el.className = "lrp-column";
  el.dataset.role = "column";
  el.dataset.col = String(id);
  el.setAttribute("role", "columnheader");
  const title = document.createElement("div");
  title.className = "lrp-column-title";
  const name = document.createElement("span");
  name.className = "lrp-column-name";
  const actions = document.createElement("span");
  actions.className = "lrp-column-actions";
  let index = 0;
  const left = button("move-left", "◀", () => callbacks.onMove(id, index - 1));
  const right = button("move-right", "▶", () => callbacks.onMove(id, index + 1));
  const remove = button("remove-column", "✕", () => callbacks.onRemove(id));
  actions.append(left, right, remove);
  const composite = document.createElement("span");
  composite.className = "lrp-column-composite";
  const line = document.createElement("div");
  line.className = "lrp-column-line";
  line.append(composite, actions);
  title.append(name);
  const paramsSlot = document.createElement("div");
  const overridesSlot = document.createElement("div");
  overridesSlot.className = "lrp-overrides";
  el.append(title, line, paramsSlot, overridesSlot);

  let params: ParamGroup | null = null;
  let overrides = new Map<string, ParamGroup>();
  let overrideSignature = "";

  const overrideBlock = (override: ColumnOverride): HTMLElement => {
    const block = document.createElement("div");
    block.className = "lrp-override";
    block.dataset.layer = override.layer;
    const label = document.createElement("div");
    label.className = "lrp-override-name";
    if (override.layer === "") {
      // A type override (every layer of a class) is shown; its parameters are edited in Python.
      const within = override.within ? ` in ${override.within}` : "";
      label.textContent = `every ${override.type ?? "?"}${within}: ${override.rule}`;
      block.append(label);
      return block;
    }
    label.textContent = `${override.layer}: ${override.rule}`;
    const group = paramGroup(override.params, (values) => callbacks.onLayerParams(id, override.layer, values));
    overrides.set(override.layer, group);
    block.append(label, group.el);
    return block;
  };

  return {
    el,
    update(column, nextIndex, count, keepValues = false) {
      index = nextIndex;
      name.textContent = column.name;
      el.setAttribute("aria-label", `Column ${column.name}`);
      left.disabled = index === 0;
      right.disabled = index === count - 1;
      left.setAttribute("aria-label", `Move ${column.name} left`);
      right.setAttribute("aria-label", `Move ${column.name} right`);
      remove.setAttribute("aria-label", `Remove ${column.name}`);
      composite.textContent = column.composite === "" ? "plain gradient" : column.composite;
      composite.title = column.config;
      if (params === null || params.signature !== Object.keys(column.params).join(",")) {
        params = paramGroup(column.params, (values) => callbacks.onParams(id, values));
        paramsSlot.replaceChildren(params.el);
      }
      if (!keepValues) params.set(column.params);
      const signature = JSON.stringify(column.overrides.map((o) => [o.layer, o.rule, Object.keys(o.params)]));
      if (signature !== overrideSignature) {
        overrideSignature = signature;
        overrides = new Map();
        overridesSlot.replaceChildren(...column.overrides.map(overrideBlock));
      }
      for (const override of column.overrides) {
        if (override.layer !== "" && !keepValues) overrides.get(override.layer)?.set(override.params);
      }
    },
  };
}
