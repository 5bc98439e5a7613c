/**
 * The layer tree's row elements (`tree.ts` places and paints them): a module row (`data-layer`),
 * a captured operation's row (`data-layer`, `data-op`, the operation as a badge) or a group row
 * (`data-group`, "<class> ×<count>"); each with a toggle, name, type, output shape, parameter
 * count and rule badge (`data-rule`, `data-origin`).
 */
import { formatCount, formatExact } from "../shared/format";
import type { TreeNode } from "./tree_model";
import type { LayerInfo, RuleState } from "./types";

/** A new row element for `node` (its state is painted when it is attached). */
export function createRow(node: TreeNode): HTMLDivElement {
  const row = document.createElement("div");
  row.className = "lrp-row";
  row.setAttribute("role", "treeitem");
  row.setAttribute("aria-level", String(node.depth + 1));
  row.style.setProperty("--lrp-depth", String(node.depth));
  const toggle = document.createElement("span");
  toggle.className = "lrp-toggle";
  toggle.dataset.role = "toggle";
  toggle.setAttribute("aria-hidden", "true");
  if (node.group) {
    const { name, type, members, params } = node.group;
    const first = members[0] ?? "";
    const last = members[members.length - 1] ?? "";
    const cut = first.lastIndexOf(".") + 1;
    row.classList.add("lrp-group-row");
    row.dataset.group = name;
    const label = text("lrp-type", `${type} ×${members.length}`);
    row.append(toggle, nameCell(first.slice(0, cut), `${first.slice(cut)}–${last.slice(cut)}`), label);
    row.append(text("lrp-params", params > 0 ? formatCount(params) : "–"), badge());
    return row;
  }
  const info = node.info as LayerInfo;
  row.dataset.layer = info.name;
  row.dataset.rule = "";
  let type: HTMLElement = text("lrp-type", info.type);
  let cut = info.name.lastIndexOf(".") + 1;
  if (info.op !== "") {
    row.dataset.op = info.op;
    row.classList.add("lrp-op-row");
    cut = info.name.lastIndexOf(":") + 1;
    type = document.createElement("span");
    type.className = "lrp-type";
    type.append(text("lrp-op", info.op));
  }
  const shape = text("lrp-shape", info.output_shape ? info.output_shape.slice(1).join("×") : "");
  const params = text("lrp-params", info.params > 0 ? formatCount(info.params) : "–");
  row.append(toggle, nameCell(info.name.slice(0, cut), info.name.slice(cut)), type, shape, params, badge());
  return row;
}

export function tooltip(node: TreeNode): string {
  if (node.group) {
    const { type, members } = node.group;
    const span = `${members[0] ?? ""} … ${members[members.length - 1] ?? ""}`;
    return `${members.length} repeated ${type} blocks, ${span}: click to select them all`;
  }
  const info = node.info as LayerInfo;
  if (info.op !== "") return `${info.name}: captured operation ${info.op}`;
  return `${info.name} (${info.type}), ${formatExact(info.params)} parameters`;
}

function text(className: string, content: string): HTMLSpanElement {
  const span = document.createElement("span");
  span.className = className;
  span.textContent = content;
  return span;
}

function nameCell(prefix: string, rest: string): HTMLSpanElement {
  const name = document.createElement("span");
  name.className = "lrp-name";
  if (prefix !== "") name.append(text("lrp-name-prefix", prefix));
  name.append(text("lrp-name-last", rest));
  return name;
}

function badge(): HTMLSpanElement {
  const span = text("lrp-badge", "");
  span.hidden = true;
  return span;
}

export function paintRule(row: HTMLDivElement, state: RuleState | undefined): void {
  row.dataset.rule = state ? state.rule : "";
  row.dataset.origin = state ? state.origin : "";
  const badge = row.querySelector<HTMLSpanElement>(".lrp-badge");
  if (!badge) return;
  badge.textContent = state ? state.rule : "";
  badge.hidden = !state;
  if (state) {
    const values = Object.entries(state.params)
      .filter(([, v]) => v !== null)
      .map(([k, v]) => `${k}=${String(v)}`);
    const warning = state.origin === "fallback" ? " — no rule fits: plain gradient" : "";
    badge.title = `${state.rule}(${values.join(", ")}) · ${state.origin}${warning}`;
  }
}
