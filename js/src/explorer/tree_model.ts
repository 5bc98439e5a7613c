/**
 * The layer tree's data, without the DOM: nodes for modules, captured operations and groups of
 * repeated blocks, their expanded state, the filter, and the flat list of visible rows that the
 * view (`tree.ts`) renders a window of.
 *
 * Rows arrive in pre-order (parents first). A row whose `group` is set is a member of a run of
 * repeated blocks: the first member creates one group node under the members' parent, and every
 * member becomes a child of that group node (one level deeper). Every node keeps its pre-order
 * position (`order`), so any list of visible nodes is sorted by it.
 */
import type { LayerInfo } from "./types";

export interface GroupInfo {
  /** The group's name (`data-group`), e.g. `"layers"` or `"features.2-5"`. */
  name: string;
  /** The members' class name. */
  type: string;
  /** Qualified names of the members, in order. */
  members: string[];
  /** Parameter elements of all members together. */
  params: number;
}

export interface TreeNode {
  /** A module or captured operation (`layer`), or a group of repeated blocks (`group`). */
  kind: "layer" | "group";
  /** The row of a `layer` node; null for a group. */
  info: LayerInfo | null;
  group: GroupInfo | null;
  depth: number;
  parent: TreeNode | null;
  children: TreeNode[];
  expanded: boolean;
  /** Position in the pre-order of all nodes. */
  order: number;
  /** Lower-case text the filter searches: name, type, operation (a group: its name and type). */
  text: string;
}

export interface TreeModel {
  roots: TreeNode[];
  /** Every node in pre-order. */
  nodes: TreeNode[];
  /** Layer nodes by qualified name. */
  byName: Map<string, TreeNode>;
  /** Group nodes by group name. */
  byGroup: Map<string, TreeNode>;
}

/** Builds the nodes (groups included) from the rows; every node starts expanded. */
export function buildTree(layers: readonly LayerInfo[]): TreeModel {
  const roots: TreeNode[] = [];
  const nodes: TreeNode[] = [];
  const byName = new Map<string, TreeNode>();
  const byGroup = new Map<string, TreeNode>();
  const add = (node: TreeNode): void => {
    node.order = nodes.length;
    nodes.push(node);
    if (node.parent) node.parent.children.push(node);
    else roots.push(node);
  };
  for (const info of layers) {
    let parent = byName.get(info.parent) ?? null;
    if (info.group !== "") {
      let group = byGroup.get(info.group);
      if (!group) {
        const data: GroupInfo = { name: info.group, type: info.type, members: [], params: 0 };
        group = makeNode("group", null, data, parent, `${info.group} ${info.type}`);
        byGroup.set(info.group, group);
        add(group);
      }
      group.group?.members.push(info.name);
      if (group.group) group.group.params += info.params;
      parent = group;
    }
    const node = makeNode("layer", info, null, parent, `${info.name} ${info.type} ${info.op}`);
    byName.set(info.name, node);
    add(node);
  }
  return { roots, nodes, byName, byGroup };
}

function makeNode(
  kind: TreeNode["kind"],
  info: LayerInfo | null,
  group: GroupInfo | null,
  parent: TreeNode | null,
  text: string,
): TreeNode {
  const depth = parent ? parent.depth + 1 : 0;
  return { kind, info, group, depth, parent, children: [], expanded: true, order: 0, text: text.toLowerCase() };
}

/** The nodes shown, in order: roots, and children of expanded shown nodes; `shown` (the
 * filter's result, null: no filter) restricts them. */
export function visibleNodes(model: TreeModel, shown: ReadonlySet<TreeNode> | null): TreeNode[] {
  const out: TreeNode[] = [];
  const walk = (list: readonly TreeNode[]): void => {
    for (const node of list) {
      if (shown && !shown.has(node)) continue;
      out.push(node);
      if (node.expanded && node.children.length > 0) walk(node.children);
    }
  };
  walk(model.roots);
  return out;
}

/** Nodes whose text contains `needle` (lower case) and all their ancestors; null for `""`. */
export function filterNodes(model: TreeModel, needle: string): Set<TreeNode> | null {
  if (needle === "") return null;
  const shown = new Set<TreeNode>();
  for (const node of model.nodes) {
    if (!node.text.includes(needle)) continue;
    for (let n: TreeNode | null = node; n && !shown.has(n); n = n.parent) shown.add(n);
  }
  return shown;
}

/** The module names a node stands for: itself, or a group's members. */
export function namesOf(node: TreeNode): string[] {
  return node.group ? node.group.members : node.info ? [node.info.name] : [];
}

/**
 * Indices `[start, end)` of the rows to render: those inside the viewport plus `overscan` rows
 * on each side; every row when there are at most `renderAll` of them.
 */
export function rowWindow(
  count: number,
  scrollTop: number,
  viewport: number,
  rowHeight: number,
  overscan: number,
  renderAll: number,
): [number, number] {
  if (count <= renderAll) return [0, count];
  const first = Math.floor(Math.max(0, scrollTop) / rowHeight);
  const last = Math.ceil((Math.max(0, scrollTop) + viewport) / rowHeight);
  return [Math.max(0, Math.min(count, first - overscan)), Math.min(count, last + overscan)];
}
