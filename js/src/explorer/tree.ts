/**
 * Layer tree: one row per module of the model, nested and collapsible.
 *
 * Testing contract: every row carries `data-layer="<qualified module name>"`; selected rows carry
 * `aria-selected="true"`. Clicking a row selects it alone, Ctrl/Cmd-click toggles it, Shift-click
 * selects the range of visible rows from the last clicked one. Keyboard: arrows move, Left/Right
 * collapse/expand, Enter/Space select.
 */
import { formatCount, formatExact } from "../shared/format";
import type { LayerInfo, RuleState } from "./types";

export interface LayerTreeOptions {
  /** Called with the new selection whenever the user changes it. */
  onSelect: (names: string[]) => void;
  /** Rows deeper than this start collapsed when the model has more than `autoCollapseRows` rows. */
  autoCollapseDepth?: number;
  autoCollapseRows?: number;
}

export interface LayerTree {
  readonly el: HTMLElement;
  /** Marks `names` as selected (and expands their ancestors) without notifying `onSelect`. */
  setSelected(names: readonly string[]): void;
  /** Expands or collapses every row with children. */
  setAllExpanded(expanded: boolean): void;
  /** Shows each leaf's effective rule as a badge (`data-rule`, `data-origin` on the row). */
  setRules(rules: Readonly<Record<string, RuleState>>): void;
  /** Shows only rows whose name or type contains `text` (and their ancestors). */
  filter(text: string): void;
}

interface Node {
  info: LayerInfo;
  depth: number;
  children: Node[];
  item: HTMLLIElement;
  row: HTMLDivElement;
  group: HTMLUListElement | null;
  badge: HTMLSpanElement;
}

export function createLayerTree(layers: readonly LayerInfo[], options: LayerTreeOptions): LayerTree {
  const el = document.createElement("ul");
  el.className = "lrp-tree";
  el.setAttribute("role", "tree");
  el.setAttribute("aria-multiselectable", "true");

  const nodes = new Map<string, Node>();
  const roots: Node[] = [];
  for (const info of layers) {
    const parent = nodes.get(info.parent);
    const node = createNode(info, parent ? parent.depth + 1 : 0);
    nodes.set(info.name, node);
    if (parent) {
      parent.children.push(node);
    } else {
      roots.push(node);
    }
  }
  for (const node of nodes.values()) finishNode(node);
  for (const node of roots) el.append(node.item);

  const collapseDepth = options.autoCollapseDepth ?? 1;
  if (layers.length > (options.autoCollapseRows ?? 200)) {
    for (const node of nodes.values()) {
      if (node.depth >= collapseDepth) setExpanded(node, false);
    }
  }

  let selection = new Set<string>();
  let anchor: string | null = null;
  const firstNode = roots[0];
  if (firstNode) firstNode.row.tabIndex = 0;

  function createNode(info: LayerInfo, depth: number): Node {
    const item = document.createElement("li");
    item.setAttribute("role", "none");
    const row = document.createElement("div");
    row.className = "lrp-row";
    row.dataset.layer = info.name;
    row.setAttribute("role", "treeitem");
    row.setAttribute("aria-level", String(depth + 1));
    row.setAttribute("aria-selected", "false");
    row.tabIndex = -1;
    row.style.setProperty("--lrp-depth", String(depth));
    row.title = `${info.name} (${info.type}), ${formatExact(info.params)} parameters`;
    item.append(row);
    row.dataset.rule = "";
    const badge = document.createElement("span");
    badge.className = "lrp-badge";
    return { info, depth, children: [], item, row, group: null, badge };
  }

  function finishNode(node: Node): void {
    const toggle = document.createElement("span");
    toggle.className = "lrp-toggle";
    toggle.dataset.role = "toggle";
    toggle.setAttribute("aria-hidden", "true");

    const name = document.createElement("span");
    name.className = "lrp-name";
    const cut = node.info.name.lastIndexOf(".") + 1;
    if (cut > 0) {
      const prefix = document.createElement("span");
      prefix.className = "lrp-name-prefix";
      prefix.textContent = node.info.name.slice(0, cut);
      name.append(prefix);
    }
    name.append(node.info.name.slice(cut));

    const type = document.createElement("span");
    type.className = "lrp-type";
    type.textContent = node.info.type;

    const params = document.createElement("span");
    params.className = "lrp-params";
    params.textContent = node.info.params > 0 ? formatCount(node.info.params) : "–";

    const shape = document.createElement("span");
    shape.className = "lrp-shape";
    shape.textContent = node.info.output_shape ? node.info.output_shape.slice(1).join("×") : "";

    node.row.append(toggle, name, type, shape, params, node.badge);

    if (node.children.length > 0) {
      const group = document.createElement("ul");
      group.className = "lrp-group";
      group.setAttribute("role", "group");
      for (const child of node.children) group.append(child.item);
      node.item.append(group);
      node.group = group;
      setExpanded(node, true);
    }
  }

  function setExpanded(node: Node, expanded: boolean): void {
    if (!node.group) return;
    node.group.hidden = !expanded;
    node.row.setAttribute("aria-expanded", String(expanded));
  }

  function isExpanded(node: Node): boolean {
    return node.group !== null && !node.group.hidden;
  }

  function visibleNodes(): Node[] {
    const out: Node[] = [];
    const walk = (list: Node[]): void => {
      for (const node of list) {
        out.push(node);
        if (isExpanded(node)) walk(node.children);
      }
    };
    walk(roots);
    return out;
  }

  function render(): void {
    for (const node of nodes.values()) {
      node.row.setAttribute("aria-selected", String(selection.has(node.info.name)));
    }
  }

  function commit(next: Set<string>): void {
    selection = next;
    render();
    options.onSelect([...selection]);
  }

  function focusRow(node: Node): void {
    for (const other of nodes.values()) other.row.tabIndex = -1;
    node.row.tabIndex = 0;
    node.row.focus();
  }

  function choose(node: Node, mode: "single" | "toggle" | "range"): void {
    const name = node.info.name;
    if (mode === "toggle") {
      const next = new Set(selection);
      if (next.has(name)) next.delete(name);
      else next.add(name);
      anchor = name;
      commit(next);
    } else if (mode === "range" && anchor !== null) {
      const order = visibleNodes().map((n) => n.info.name);
      const a = order.indexOf(anchor);
      const b = order.indexOf(name);
      if (a < 0 || b < 0) {
        choose(node, "single");
        return;
      }
      const [lo, hi] = a < b ? [a, b] : [b, a];
      commit(new Set(order.slice(lo, hi + 1)));
    } else {
      anchor = name;
      commit(new Set([name]));
    }
  }

  function nodeFromEvent(event: Event): Node | undefined {
    const target = event.target as HTMLElement | null;
    const row = target?.closest<HTMLElement>(".lrp-row");
    return row?.dataset.layer !== undefined ? nodes.get(row.dataset.layer) : undefined;
  }

  el.addEventListener("click", (event) => {
    const node = nodeFromEvent(event);
    if (!node) return;
    const target = event.target as HTMLElement;
    if (target.closest(".lrp-toggle") && node.group) {
      setExpanded(node, !isExpanded(node));
      return;
    }
    focusRow(node);
    const mode = event.shiftKey ? "range" : event.ctrlKey || event.metaKey ? "toggle" : "single";
    choose(node, mode);
  });

  el.addEventListener("keydown", (event) => {
    const node = nodeFromEvent(event);
    if (!node) return;
    const visible = visibleNodes();
    const index = visible.indexOf(node);
    let handled = true;
    switch (event.key) {
      case "ArrowDown": {
        const next = visible[index + 1];
        if (next) focusRow(next);
        break;
      }
      case "ArrowUp": {
        const prev = visible[index - 1];
        if (prev) focusRow(prev);
        break;
      }
      case "ArrowRight":
        if (node.group && !isExpanded(node)) setExpanded(node, true);
        else if (node.children[0]) focusRow(node.children[0]);
        break;
      case "ArrowLeft": {
        const parent = nodes.get(node.info.parent);
        if (isExpanded(node)) setExpanded(node, false);
        else if (parent) focusRow(parent);
        break;
      }
      case "Enter":
      case " ":
        choose(node, event.ctrlKey || event.metaKey ? "toggle" : "single");
        break;
      default:
        handled = false;
    }
    if (handled) {
      // Keep JupyterLab's notebook shortcuts (e.g. Space, arrows) from acting on the cell.
      event.preventDefault();
      event.stopPropagation();
    }
  });

  return {
    el,
    setSelected(names) {
      selection = new Set(names.filter((name) => nodes.has(name)));
      for (const name of selection) {
        let parent = nodes.get(nodes.get(name)?.info.parent ?? "");
        while (parent) {
          setExpanded(parent, true);
          parent = nodes.get(parent.info.parent);
        }
      }
      render();
    },
    setAllExpanded(expanded) {
      for (const node of nodes.values()) setExpanded(node, expanded);
    },
    setRules(rules) {
      for (const node of nodes.values()) {
        const state = rules[node.info.name];
        node.row.dataset.rule = state ? state.rule : "";
        node.row.dataset.origin = state ? state.origin : "";
        node.badge.textContent = state ? state.rule : "";
        node.badge.hidden = !state;
        if (state) {
          const values = Object.entries(state.params)
            .filter(([, v]) => v !== null)
            .map(([k, v]) => `${k}=${String(v)}`);
          const warning = state.origin === "fallback" ? " — no rule fits: plain gradient" : "";
          node.badge.title = `${state.rule}(${values.join(", ")}) · ${state.origin}${warning}`;
        }
      }
    },
    filter(text) {
      const needle = text.trim().toLowerCase();
      const matches = (node: Node): boolean =>
        needle === "" || node.info.name.toLowerCase().includes(needle) || node.info.type.toLowerCase().includes(needle);
      const walk = (node: Node): boolean => {
        let shown = matches(node);
        for (const child of node.children) shown = walk(child) || shown;
        node.item.hidden = !shown;
        if (shown && needle !== "") setExpanded(node, true);
        return shown;
      };
      for (const node of roots) walk(node);
    },
  };
}
