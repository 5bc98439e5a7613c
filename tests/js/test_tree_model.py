"""The layer tree's data (``js/src/explorer/tree_model.ts``) on hand-made row payloads, in Node.js.

The payload is what ``Explorer.layers`` sends (rows in pre-order with ``group`` and ``op``),
written here by hand: a model ``blocks`` (ModuleList) of 40 identical blocks, each with two
Linear layers and an ``attn`` module holding two captured operations (``op`` rows named
``blocks.<i>.attn:matmul#0`` and ``:softmax#1``), then a ``head``. Expected: one group node under
``blocks`` whose children are the 40 members; the visible list follows expand/collapse; the
filter keeps matches (by name, type or operation) and their ancestors; the row window is bounded
by the viewport once there are more rows than ``renderAll``.
"""

from __future__ import annotations

BLOCKS = 40
LEAVES = ["fc1", "fc2"]
OPS = [("matmul", 0), ("softmax", 1)]


def row(name: str, parent: str, type_: str, *, leaf: bool, group: str = "", op: str = "") -> dict:
    # parameters: 20 per Linear, summed over a module's subtree
    params = {"Linear": 20, "Block": 20 * len(LEAVES), "ModuleList": 20 * len(LEAVES) * BLOCKS}
    params = params.get(type_, 0)
    return {"name": name, "parent": parent, "type": type_, "params": params, "leaf": leaf,
            "output_shape": None, "group": group, "op": op}  # fmt: skip


def payload() -> list[dict]:
    rows = [row("blocks", "", "ModuleList", leaf=False)]
    for i in range(BLOCKS):
        block = f"blocks.{i}"
        rows.append(row(block, "blocks", "Block", leaf=False, group="blocks"))
        rows += [row(f"{block}.{leaf}", block, "Linear", leaf=True) for leaf in LEAVES]
        rows.append(row(f"{block}.attn", block, "Attention", leaf=False))
        rows += [
            row(f"{block}.attn:{op}#{k}", f"{block}.attn", op, leaf=True, op=op) for op, k in OPS
        ]
    rows.append(row("head", "", "Linear", leaf=True))
    return rows


RUNNER = """
import { buildTree, filterNodes, rowWindow, visibleNodes } from "./module.mjs";
let text = "";
for await (const chunk of process.stdin) text += chunk;
const { rows, windows } = JSON.parse(text);
const model = buildTree(rows);
const label = (n) => n.kind === "group" ? `group:${n.group.name}` : n.info.name;
const show = (shown = null) => visibleNodes(model, shown).map(label);
const out = {};
const group = model.byGroup.get("blocks");
out.group = { members: group.group.members, params: group.group.params, depth: group.depth,
  parent: label(group.parent), children: group.children.map(label),
  memberDepth: group.children[0].depth, order: model.nodes.map((n) => n.order) };
out.roots = model.roots.map(label);
out.allExpanded = show().length;
for (const n of model.nodes) n.expanded = false;
out.collapsed = show();
model.byName.get("blocks").expanded = true;
out.blocksOpen = show();
group.expanded = true;
out.groupOpen = show().length;
for (const needle of ["matmul", "blocks.7.fc2", "attention", "nothing"]) {
  const shown = filterNodes(model, needle);
  for (const n of shown) n.expanded = true;
  out[`filter:${needle}`] = show(shown);
}
out.noFilter = filterNodes(model, "");
out.windows = windows.map((w) => rowWindow(...w));
process.stdout.write(JSON.stringify(out));
"""


def test_groups_visible_rows_filter_and_window(run_ts):
    rows = payload()
    windows = [
        [30, 0, 420, 22, 12, 200],  # few rows: all of them
        [5000, 0, 420, 22, 12, 200],  # top of a long list: 0 .. ceil(420/22) + 12
        [5000, 22 * 1000 + 5, 420, 22, 12, 200],  # scrolled: 1000 - 12 .. 1020 + 12
        [250, 22 * 245, 420, 22, 12, 200],  # near the end: clipped to the count
    ]
    out = run_ts("explorer/tree_model", RUNNER, {"rows": rows, "windows": windows})
    members = [f"blocks.{i}" for i in range(BLOCKS)]
    per_block = 1 + len(LEAVES) + 1 + len(OPS)  # block, its leaves, attn, its operations

    group = out["group"]
    assert group["members"] == members and group["children"] == members
    assert group["params"] == BLOCKS * 20 * len(LEAVES)
    assert (group["parent"], group["depth"], group["memberDepth"]) == ("blocks", 1, 2)
    assert group["order"] == list(range(len(rows) + 1))  # pre-order, the group node included
    assert out["roots"] == ["blocks", "head"]

    # every node visible: the rows plus one group row
    assert out["allExpanded"] == len(rows) + 1 == 2 + 1 + BLOCKS * per_block
    assert out["collapsed"] == ["blocks", "head"]
    assert out["blocksOpen"] == ["blocks", "group:blocks", "head"]
    assert out["groupOpen"] == 3 + BLOCKS  # members shown, each collapsed

    # by operation: every matmul row with its ancestors (attn, block, group, blocks)
    matmul = out["filter:matmul"]
    assert [n for n in matmul if n.endswith("#0")] == [
        f"blocks.{i}.attn:matmul#0" for i in range(BLOCKS)
    ]
    assert matmul[:5] == ["blocks", "group:blocks", "blocks.0", "blocks.0.attn",
                          "blocks.0.attn:matmul#0"]  # fmt: skip
    assert "head" not in matmul and not any(n.endswith("fc1") for n in matmul)
    # by name: one row and its ancestors only
    assert out["filter:blocks.7.fc2"] == ["blocks", "group:blocks", "blocks.7", "blocks.7.fc2"]
    # by type: the attention modules (their operations do not match and stay hidden)
    attention = out["filter:attention"]
    assert [n for n in attention if n.endswith(".attn")] == [f"blocks.{i}.attn" for i in range(40)]
    assert not any("#" in n for n in attention)
    assert out["filter:nothing"] == [] and out["noFilter"] is None

    assert out["windows"] == [[0, 30], [0, 20 + 12], [1000 - 12, 1020 + 12], [233, 250]]
