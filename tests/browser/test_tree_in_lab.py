"""The Explorer's layer tree on a big, repetitive model, in real JupyterLab (headless Chromium).

The model (``_repetitive_model``): 40 identical blocks of 8 identical units of 6 layers, 2,323
module rows, plus 41 group rows when everything is expanded. Checked:

- the 40 blocks fold into one group row (``data-group="blocks"``, "Block ×40") that a click
  expands (and selects: every block);
- rows in the DOM stay bounded (a window of the visible rows) when all 2,364 rows are expanded,
  also after scrolling to the end, where the last row is rendered and the first ones are gone;
- the filter keeps the matching rows and their ancestors (by name, by type);
- a rule chosen on the group row reaches every leaf of every block (kernel side: one override
  ``within="blocks"``; page side: rows of the first and last block show it), with exactly one
  recomputation and no forward pass;
- a tree payload with captured operations (a hand-made description with ``op`` nodes) renders
  their rows with ``data-layer`` (the captured name), ``data-op`` and an operation badge, and
  the filter finds them by operation.
"""

from __future__ import annotations

import ast

import nbformat
import pytest
from _explorer_page import wait_settled
from _lab_page import ARTIFACTS
from _repetitive_model import BLOCKS, GROUP_ROWS, MODEL_SOURCE, MODULE_ROWS

pytestmark = pytest.mark.browser

NOTEBOOK = "tree_test.ipynb"
ROW_HEIGHT = 22  # js/src/explorer/tree.ts
SETUP = """\
from lrp_widgets import Explorer

x = torch.randn(2, 8, generator=torch.Generator().manual_seed(0))
explorer = Explorer(build_repetitive_model(), x)
print("rows:", len(explorer.layers))"""
# The description a capture of functional operations will give: operation nodes under modules.
OPS = """\
from unittest import mock
from lrp_core.live import LiveExplanation

real_describe = LiveExplanation.describe

def operation(name, op):
    return {"name": name, "type": op, "op": op, "params": 0, "leaf": True,
            "input_shapes": None, "output_shapes": [[2, 4, 4]], "children": []}

def with_operations(self):
    tree = real_describe(self)
    block = tree["children"][0]
    block["children"] += [operation("0:matmul#0", "matmul"), operation("0:softmax#1", "softmax")]
    return tree

small = nn.Sequential(nn.Sequential(nn.Linear(8, 8), nn.ReLU()), nn.Linear(8, 3)).eval()
with mock.patch.object(LiveExplanation, "describe", with_operations):
    ops_explorer = Explorer(small, x)
print([row["op"] for row in ops_explorer.layers])"""


def write_notebook(root) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(MODEL_SOURCE),
        nbformat.v4.new_code_cell(SETUP),
        nbformat.v4.new_code_cell("explorer"),
        nbformat.v4.new_code_cell(OPS),
        nbformat.v4.new_code_cell("ops_explorer"),
    ]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(notebook, root / NOTEBOOK)


def layer_rows(tree) -> list[str]:
    """``data-layer`` of the rows in the DOM, in order."""
    return tree.locator("[data-layer]").evaluate_all("rows => rows.map((r) => r.dataset.layer)")


def visible_row_count(tree) -> int:
    """Rows the tree shows (rendered or not): the row canvas is ROW_HEIGHT per row."""
    height = tree.locator(".lrp-tree-rows").evaluate("(el) => parseFloat(el.style.height)")
    return round(height / ROW_HEIGHT)


def test_layer_tree_of_a_repetitive_model(page, jupyter, lab_server):
    write_notebook(lab_server.root)
    page.goto(f"{lab_server.url}/lab/tree/{NOTEBOOK}")
    jupyter.wait_for_notebook()
    jupyter.run_all_cells()
    explorer = page.locator(".lrp-explorer").first
    explorer.wait_for()
    wait_settled(page, explorer, timeout_ms=120_000)
    tree = explorer.locator(".lrp-tree")

    # Folded: stem, blocks, the group row, head. The group row names the class and the count.
    group = tree.locator("[data-group='blocks']")
    assert f"Block ×{BLOCKS}" in group.inner_text()
    assert layer_rows(tree) == ["stem", "blocks", "head"]

    # A click expands the group (and selects all its blocks).
    group.click()
    tree.locator(f"[data-layer='blocks.{BLOCKS - 1}']").wait_for()
    assert layer_rows(tree)[:4] == ["stem", "blocks", "blocks.0", "blocks.1"]
    assert group.get_attribute("aria-selected") == "true"
    assert "40 selected" in explorer.locator("[data-role='status']").inner_text()

    # Everything expanded: 2,364 rows in the tree, a bounded window of them in the DOM.
    explorer.locator("[data-role='expand-all']").click()
    assert visible_row_count(tree) == MODULE_ROWS + GROUP_ROWS > 2000
    rendered = tree.locator(".lrp-row").count()
    assert rendered <= 60, f"{rendered} rows in the DOM"
    tree.evaluate("(el) => { el.scrollTop = el.scrollHeight; }")
    tree.locator("[data-layer='head']").wait_for()
    assert tree.locator(".lrp-row").count() <= 60
    assert tree.locator("[data-layer='stem']").count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    explorer.screenshot(path=str(ARTIFACTS / "tree-expanded-end.png"))
    tree.evaluate("(el) => { el.scrollTop = 0; }")
    tree.locator("[data-layer='stem']").wait_for()

    # Filter by name: the row and its ancestors (group rows included); by type: matches only.
    search = explorer.locator("[data-role='filter']")
    search.fill("blocks.7.units.3.fc2")
    page.wait_for_function(
        "(tree) => tree.querySelectorAll('.lrp-row').length === 7", arg=tree.element_handle()
    )
    assert layer_rows(tree) == [
        "blocks", "blocks.7", "blocks.7.units", "blocks.7.units.3", "blocks.7.units.3.fc2",
    ]  # fmt: skip
    groups = tree.locator("[data-group]").evaluate_all("rows => rows.map((r) => r.dataset.group)")
    assert groups == ["blocks", "blocks.7.units"]
    search.fill("head")
    page.wait_for_function(
        "(tree) => tree.querySelectorAll('.lrp-row').length === 1", arg=tree.element_handle()
    )
    assert layer_rows(tree) == ["head"]
    search.fill("")
    explorer.locator("[data-role='collapse-all']").click()
    assert layer_rows(tree) == ["stem", "blocks", "head"]

    # A rule on the group row: every block's leaves, one recomputation, no forward pass.
    computed = int(explorer.get_attribute("data-compute-count"))
    tree.locator("[data-layer='blocks'] [data-role='toggle']").click()  # collapse all closed it
    group.click()
    assert "Rule of 40 layers" in explorer.locator(".lrp-rules").inner_text()
    explorer.locator("[data-role='rule-select']").evaluate(
        """(select) => {
            select.value = "Epsilon";
            select.dispatchEvent(new Event("change", { bubbles: true }));
        }"""
    )
    page.wait_for_function(
        "([root, n]) => Number(root.dataset.computeCount) === n",
        arg=[explorer.element_handle(), computed + 1],
        timeout=120_000,
    )
    wait_settled(page, explorer, timeout_ms=120_000)
    assert explorer.get_attribute("data-compute-count") == str(computed + 1)
    kernel = jupyter.run_new_cell(
        "overrides = [(o.name, o.type, o.within) for o in explorer.live.assignment.overrides]\n"
        "in_blocks = {(s['rule'], s['origin']) for n, s in explorer.rules.items()"
        " if n.startswith('blocks.')}\n"
        "print((overrides, sorted(in_blocks), explorer.rules['head']['origin'],"
        " explorer.live.forward_count, explorer.compute_count))"
    )
    overrides, in_blocks, head_origin, forwards, count = ast.literal_eval(kernel.strip())
    assert overrides == [(None, None, "blocks")]
    assert in_blocks == [("Epsilon", "override")]
    assert head_origin == "composite" and forwards == 1
    for block in (0, BLOCKS - 1):  # the page shows it too, in the first and last block
        explorer.locator(f"[data-layer='blocks.{block}'] [data-role='toggle']").click()
        explorer.locator(f"[data-layer='blocks.{block}.units'] [data-role='toggle']").click()
        explorer.locator(f"[data-group='blocks.{block}.units'] [data-role='toggle']").click()
        unit = f"blocks.{block}.units.7"
        explorer.locator(f"[data-layer='{unit}'] [data-role='toggle']").click()
        leaf = explorer.locator(f"[data-layer='{unit}.act3']")
        assert leaf.get_attribute("data-rule") == "Epsilon"
        assert leaf.get_attribute("data-origin") == "override"
    assert explorer.locator("[data-layer='head']").get_attribute("data-origin") == "composite"

    # Captured operations: rows with their captured name, operation type and badge.
    ops = page.locator(".lrp-explorer").nth(1)
    ops.wait_for()
    matmul = ops.locator("[data-layer='0:matmul#0']")
    assert matmul.get_attribute("data-op") == "matmul"
    assert matmul.locator(".lrp-op").inner_text() == "matmul"
    assert ops.locator("[data-op='softmax']").get_attribute("data-layer") == "0:softmax#1"
    ops.locator("[data-role='filter']").fill("softmax")
    page.wait_for_function(
        "(tree) => tree.querySelectorAll('.lrp-row').length === 2",
        arg=ops.locator(".lrp-tree").element_handle(),
    )
    assert layer_rows(ops.locator(".lrp-tree")) == ["0", "0:softmax#1"]
    ops.screenshot(path=str(ARTIFACTS / "tree-operations.png"))
