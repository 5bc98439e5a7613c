/**
 * Layer tree: one row per module of the model (and per captured operation), nested and
 * collapsible; runs of repeated blocks fold into one group row. Only the rows in view are in the
 * DOM (fixed row height, a window of rows with some overscan; every row while there are at most
 * `RENDER_ALL` visible), so models with thousands of rows stay responsive: scrolling, expanding
 * and collapsing touch a few dozen rows, never the whole tree. The data (groups, expanded state,
 * filter, the visible list) lives in `tree_model.ts`, the row elements in `tree_rows.ts`.
 *
 * Testing contract: every module row carries `data-layer="<qualified module name>"`; selected
 * rows carry `aria-selected="true"`. A group row carries `data-group="<group name>"` (no
 * `data-layer`); a click on it selects all its members and expands it. A row of a captured
 * operation carries `data-layer="<captured name>"` and `data-op="<operation type>"`, with the
 * type as a badge. Clicking a row selects it alone, Ctrl/Cmd-click toggles it, Shift-click
 * selects the range of visible rows from the last clicked one; the toggle (`data-role="toggle"`)
 * expands or collapses. Keyboard: arrows move, Left/Right collapse/expand, Enter/Space select.
 */
import { buildTree, filterNodes, namesOf, rowWindow, type TreeNode, visibleNodes } from "./tree_model";
import { createRow, paintRule, tooltip } from "./tree_rows";
import type { LayerInfo, RuleState } from "./types";

/** Height of every row in pixels (the window maths relies on it; CSS reads it too). */
export const ROW_HEIGHT = 22;
/** Rows rendered above and below the viewport. */
const OVERSCAN = 6;
/** Up to this many visible rows, all are in the DOM (small models behave as a plain list). */
const RENDER_ALL = 200;
/** Height of the tree at most (it scrolls beyond); the tree sets its own height up to this, so
 * its layout never depends on the page and the page's never on its rows (CSS `contain`). */
const MAX_HEIGHT = 420;

export interface LayerTreeOptions {
  /** Called with the new selection whenever the user changes it. */
  onSelect: (names: string[]) => void;
  /** Rows deeper than this (and groups) start collapsed when the model has more than
   * `autoCollapseRows` rows. */
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
  /** Shows only rows whose name, type or operation contains `text` (and their ancestors). */
  filter(text: string): void;
}

export function createLayerTree(layers: readonly LayerInfo[], options: LayerTreeOptions): LayerTree {
  const el = document.createElement("div");
  el.className = "lrp-tree";
  el.setAttribute("role", "tree");
  el.setAttribute("aria-multiselectable", "true");
  el.style.setProperty("--lrp-row-height", `${ROW_HEIGHT}px`);
  const canvas = document.createElement("div");
  canvas.className = "lrp-tree-rows";
  canvas.setAttribute("role", "presentation");
  el.append(canvas);

  const model = buildTree(layers);
  if (layers.length > (options.autoCollapseRows ?? 200)) {
    const depth = options.autoCollapseDepth ?? 1;
    for (const node of model.nodes) {
      if (node.depth >= depth || node.kind === "group") node.expanded = false;
    }
  }

  let shown: Set<TreeNode> | null = null;
  let visible: TreeNode[] = [];
  let position = new Map<TreeNode, number>();
  let attached = new Set<TreeNode>();
  let selection = new Set<string>();
  let rules: Readonly<Record<string, RuleState>> = {};
  let anchor: TreeNode | null = null;
  let focused: TreeNode | null = model.roots[0] ?? null;
  const rows = new Map<TreeNode, HTMLDivElement>();
  /** The index each attached row is placed at (a row only moves when its index changes). */
  const placed = new Map<TreeNode, number>();
  const nodeOfRow = new WeakMap<Element, TreeNode>();

  // A tree that can outgrow MAX_HEIGHT keeps that height, so that expanding or collapsing never
  // resizes the widget (and relays out the notebook around it); a small one fits its rows.
  const fixedHeight = model.nodes.length * ROW_HEIGHT > MAX_HEIGHT ? MAX_HEIGHT : 0;
  let viewport = 0;

  /** Recomputes the visible rows (after expand, collapse or filter) and renders the window. */
  function relayout(): void {
    const scrollTop = el.scrollTop; // read before any write: no forced layout
    visible = visibleNodes(model, shown);
    position = new Map(visible.map((node, i) => [node, i]));
    const total = visible.length * ROW_HEIGHT;
    viewport = fixedHeight || Math.max(ROW_HEIGHT, Math.min(MAX_HEIGHT, total));
    el.style.height = `${viewport}px`;
    canvas.style.height = `${total}px`;
    render(Math.max(0, Math.min(scrollTop, total - viewport)));
  }

  /** Puts the rows of the window at `scrollTop` into the DOM, in order; removes the others. */
  function render(scrollTop: number): void {
    const [start, end] = rowWindow(visible.length, scrollTop, viewport, ROW_HEIGHT, OVERSCAN, RENDER_ALL);
    const wanted = new Set(visible.slice(start, end));
    for (const node of attached) {
      if (wanted.has(node)) continue;
      rows.get(node)?.remove();
      placed.delete(node);
    }
    // Rows still attached are in order; each new one goes right after the previous wanted row,
    // so the DOM order is the tree order. Rows are positioned absolutely: one that stays at its
    // index is not laid out again.
    let previous: HTMLDivElement | null = null;
    let index = start;
    for (const node of wanted) {
      let row = rows.get(node);
      if (!row) {
        row = createRow(node);
        rows.set(node, row);
        nodeOfRow.set(row, node);
      }
      if (!attached.has(node)) {
        if (previous) previous.after(row);
        else canvas.prepend(row);
        paint(node, row);
      }
      if (placed.get(node) !== index) {
        row.style.transform = `translateY(${index * ROW_HEIGHT}px)`;
        placed.set(node, index);
      }
      previous = row;
      index += 1;
    }
    attached = wanted;
  }

  function paint(node: TreeNode, row: HTMLDivElement): void {
    const names = namesOf(node);
    const selected = names.length > 0 && names.every((name) => selection.has(name));
    row.setAttribute("aria-selected", String(selected));
    if (node.children.length > 0) row.setAttribute("aria-expanded", String(node.expanded));
    row.tabIndex = node === focused ? 0 : -1;
    if (node.info) paintRule(row, rules[node.info.name]);
  }

  function repaint(): void {
    for (const node of attached) {
      const row = rows.get(node);
      if (row) paint(node, row);
    }
  }

  function setExpanded(node: TreeNode, expanded: boolean): void {
    if (node.children.length === 0 || node.expanded === expanded) return;
    node.expanded = expanded;
    const row = rows.get(node);
    if (row) row.setAttribute("aria-expanded", String(expanded));
  }

  function commit(next: Set<string>): void {
    selection = next;
    repaint();
    options.onSelect([...selection]);
  }

  function choose(node: TreeNode, mode: "single" | "toggle" | "range"): void {
    const names = namesOf(node);
    if (mode === "toggle") {
      const next = new Set(selection);
      const all = names.every((name) => next.has(name));
      for (const name of names) {
        if (all) next.delete(name);
        else next.add(name);
      }
      anchor = node;
      commit(next);
    } else if (mode === "range" && anchor !== null && position.has(anchor) && position.has(node)) {
      const a = position.get(anchor) ?? 0;
      const b = position.get(node) ?? 0;
      const [lo, hi] = a < b ? [a, b] : [b, a];
      commit(new Set(visible.slice(lo, hi + 1).flatMap(namesOf)));
    } else {
      anchor = node;
      commit(new Set(names));
    }
  }

  function focusNode(node: TreeNode): void {
    const index = position.get(node);
    if (index === undefined) return;
    const previous = focused ? rows.get(focused) : undefined;
    if (previous) previous.tabIndex = -1;
    focused = node;
    const top = index * ROW_HEIGHT;
    let scrollTop = el.scrollTop;
    if (top < scrollTop) scrollTop = top;
    else if (top + ROW_HEIGHT > scrollTop + viewport) scrollTop = top + ROW_HEIGHT - viewport;
    if (scrollTop !== el.scrollTop) el.scrollTop = scrollTop;
    render(scrollTop);
    const row = rows.get(node);
    if (row) {
      row.tabIndex = 0;
      row.focus({ preventScroll: true });
    }
  }

  function nodeFromEvent(event: Event): TreeNode | undefined {
    const row = (event.target as HTMLElement | null)?.closest(".lrp-row");
    return row ? nodeOfRow.get(row) : undefined;
  }

  el.addEventListener("scroll", () => render(el.scrollTop), { passive: true });

  // Tooltips are written when the pointer first reaches a row, not for every row rendered.
  el.addEventListener("pointerover", (event) => {
    const node = nodeFromEvent(event);
    const row = node ? rows.get(node) : undefined;
    if (node && row && !row.title) row.title = tooltip(node);
  });

  el.addEventListener("click", (event) => {
    const node = nodeFromEvent(event);
    if (!node) return;
    if ((event.target as HTMLElement).closest(".lrp-toggle") && node.children.length > 0) {
      setExpanded(node, !node.expanded);
      relayout();
      return;
    }
    const mode = event.shiftKey ? "range" : event.ctrlKey || event.metaKey ? "toggle" : "single";
    if (node.kind === "group" && mode === "single" && !node.expanded) {
      setExpanded(node, true);
      relayout();
    }
    focusNode(node);
    choose(node, mode);
  });

  el.addEventListener("keydown", (event) => {
    const node = nodeFromEvent(event);
    if (!node) return;
    const index = position.get(node) ?? 0;
    let handled = true;
    switch (event.key) {
      case "ArrowDown": {
        const next = visible[index + 1];
        if (next) focusNode(next);
        break;
      }
      case "ArrowUp": {
        const prev = visible[index - 1];
        if (prev) focusNode(prev);
        break;
      }
      case "ArrowRight":
        if (node.children.length > 0 && !node.expanded) {
          setExpanded(node, true);
          relayout();
        } else {
          const child = node.children.find((c) => position.has(c));
          if (child) focusNode(child);
        }
        break;
      case "ArrowLeft":
        if (node.expanded && node.children.length > 0) {
          setExpanded(node, false);
          relayout();
        } else if (node.parent) {
          focusNode(node.parent);
        }
        break;
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

  relayout();

  return {
    el,
    setSelected(names) {
      selection = new Set(names.filter((name) => model.byName.has(name)));
      for (const name of selection) {
        for (let parent = model.byName.get(name)?.parent; parent; parent = parent.parent) {
          setExpanded(parent, true);
        }
      }
      relayout();
      repaint();
    },
    setAllExpanded(expanded) {
      for (const node of model.nodes) setExpanded(node, expanded);
      relayout();
    },
    setRules(next) {
      rules = next;
      repaint();
    },
    filter(text) {
      shown = filterNodes(model, text.trim().toLowerCase());
      if (shown) {
        for (const node of shown) if (node.children.some((child) => shown?.has(child))) setExpanded(node, true);
      }
      relayout();
    },
  };
}
