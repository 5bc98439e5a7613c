/** Header: model name, total parameter count and expand/collapse-all buttons. */
import { formatCount, formatExact } from "../shared/format";

export interface HeaderOptions {
  modelName: string;
  totalParams: number;
  onExpandAll: (expanded: boolean) => void;
}

export function createHeader({ modelName, totalParams, onExpandAll }: HeaderOptions): HTMLElement {
  const el = document.createElement("div");
  el.className = "lrp-header";

  const title = document.createElement("span");
  title.className = "lrp-title";
  title.dataset.role = "model-name";
  title.textContent = modelName;

  const params = document.createElement("span");
  params.className = "lrp-params";
  params.textContent = `${formatCount(totalParams)} params`;
  params.title = `${formatExact(totalParams)} parameters`;

  const actions = document.createElement("span");
  actions.className = "lrp-actions";
  for (const [label, expanded] of [
    ["Expand all", true],
    ["Collapse all", false],
  ] as const) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "lrp-button";
    button.textContent = label;
    button.dataset.role = expanded ? "expand-all" : "collapse-all";
    button.addEventListener("click", () => onExpandAll(expanded));
    actions.append(button);
  }

  el.append(title, params, actions);
  return el;
}
