"""The Compare widget in real JupyterLab, driven in headless Chromium.

A notebook builds ``Compare(load_model(), images[:3], ["EpsilonPlusFlat", "EpsilonGammaBox"],
canonizers=demo_canonizers(), masks=masks[:3])`` and displays it. Checked through the testing
contract at the top of ``js/src/compare/index.ts``:

- the grid renders: rows × columns cells whose canvases show a map (many colours);
- the normalisation switch and the scale switch (99th percentile / maximum of |R|) recolour
  cells in the page: no command, no kernel computation;
- a parameter slider of one column changes exactly that column's pixels (per-cell scales, so
  no other cell may change) with one backward pass in the kernel;
- adding a column from the presets adds exactly one column of cells, others untouched;
- sorting by a score orders the rows (DOM order of ``data-row``) by the shown values, both
  directions; the difference view and hovering (``data-hover``, crosshair in every cell) happen
  in the page; the long scores fill the faithfulness values and draw the curves on demand; a
  cell downloads as PNG;
- text stays legible in JupyterLab's light and dark themes.

Screenshots: ``test-artifacts/compare*.png``; with ``LRP_UPDATE_SCREENSHOTS=1`` also
``docs/images/compare.png`` (the README's picture).
"""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest
from _compare_page import (
    CELL_COLOURS_JS,
    ROW_ORDER_JS,
    cell_pixels,
    score_values,
    wait_cells_change,
    wait_settled,
)
from _explorer_page import SLIDE_JS, rapid_slides
from _lab_page import ARTIFACTS, CONTRAST_JS, publish, set_theme

pytestmark = pytest.mark.browser

NOTEBOOK = "compare_test.ipynb"
ROWS = 3
SETUP = """\
from lrp_widgets import Compare
from lrp_widgets.demo import CLASSES, demo_canonizers, load_model, make_batch

images, labels, masks = make_batch(8, seed=0)
compare = Compare(load_model(), images[:3], ["EpsilonPlusFlat", "EpsilonGammaBox"],
                  canonizers=demo_canonizers(), masks=masks[:3], class_names=CLASSES)
compare"""


def write_notebook(root: Path) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(SETUP)]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(notebook, root / NOTEBOOK)


def column_ids(compare) -> list[int]:
    return compare.locator("[data-role='column']").evaluate_all(
        "columns => columns.map((c) => Number(c.dataset.col))"
    )


def changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {key for key in before if before[key] != after.get(key)}


def test_compare_grid_in_jupyterlab(page, jupyter, lab_server):
    write_notebook(lab_server.root)
    page.goto(f"{lab_server.url}/lab/tree/{NOTEBOOK}")
    jupyter.wait_for_notebook()
    jupyter.run_all_cells()
    compare = page.locator(".lrp-compare")
    compare.wait_for()
    wait_settled(page, compare)
    assert compare.get_attribute("data-lm-suppress-shortcuts") == "true"

    # The grid: 3 rows × 2 columns of drawn maps, one header per column, colour bar(s).
    assert column_ids(compare) == [0, 1]
    cells = compare.locator("[data-role='cell']")
    assert cells.count() == ROWS * 2
    assert all(colours > 20 for colours in compare.evaluate(CELL_COLOURS_JS))
    assert compare.locator("[data-role='colorbar']").count() == 1  # grid normalisation
    cheap = ["conservation_error", "sparseness", "relevance_mass", "pointing_game"]
    for name in cheap:
        assert compare.locator(f"[data-score='{name}']").count() == ROWS * 2
    requests = compare.get_attribute("data-requests")
    computed = int(compare.get_attribute("data-compute-count"))
    assert computed == 2  # one backward pass per column

    # Normalisation per cell: recoloured in the page, one colour bar per cell, no request.
    grid_pixels = cell_pixels(compare)
    compare.locator("[data-role='normalization']").select_option("cell")
    wait_cells_change(page, compare, grid_pixels)
    cell_scaled = cell_pixels(compare)
    assert compare.locator("[data-role='colorbar']").count() == ROWS * 2
    assert compare.get_attribute("data-requests") == requests
    assert int(compare.get_attribute("data-compute-count")) == computed
    # The map over a grey copy of the input: also drawn in the page.
    compare.locator("[data-role='show']").select_option("overlay")
    wait_cells_change(page, compare, cell_scaled)
    compare.locator("[data-role='show']").select_option("heatmap")  # redrawn synchronously
    assert cell_pixels(compare) == cell_scaled
    assert compare.get_attribute("data-requests") == requests
    # The colour scale: the maximum instead of the 99th percentile (the default) of |R| makes
    # every cell paler, in the page; the colour bars show the larger scales. Back: as before.
    scale_by = compare.locator("[data-role='scale-by']")
    bar_scales = "bars => bars.map((bar) => Number(bar.dataset.scale))"
    bars = compare.locator("[data-role='colorbar']")
    percentile_scales = bars.evaluate_all(bar_scales)
    assert scale_by.input_value() == "percentile"
    scale_by.select_option("max")
    wait_cells_change(page, compare, cell_scaled)
    assert changed(cell_scaled, cell_pixels(compare)) == set(cell_scaled)
    max_scales = bars.evaluate_all(bar_scales)
    assert all(high > low > 0 for high, low in zip(max_scales, percentile_scales, strict=True))
    assert jupyter.run_new_cell("compare.scale_by") == "'max'"  # the trait reached the kernel
    scale_by.select_option("percentile")  # redrawn synchronously
    assert cell_pixels(compare) == cell_scaled
    assert compare.get_attribute("data-requests") == requests
    assert int(compare.get_attribute("data-compute-count")) == computed

    # γ of the second column to the slider's top (2): only that column's pixels change.
    compare.locator("[data-role='column'][data-col='1'] [data-param='gamma']").evaluate(
        SLIDE_JS, 200
    )
    wait_cells_change(page, compare, cell_scaled)
    wait_settled(page, compare)
    after_gamma = cell_pixels(compare)
    assert changed(cell_scaled, after_gamma) == {f"{row}:1" for row in range(ROWS)}
    assert int(compare.get_attribute("data-compute-count")) == computed + 1
    gamma = jupyter.run_new_cell('compare.columns[1]["params"]["gamma"]')
    assert float(gamma.strip()) == 2.0

    # An invalid value: the status shows the error, the grid keeps its last good maps.
    box = compare.locator("[data-role='column'][data-col='1'] [data-param-text='gamma']")
    box.fill("-1")
    box.press("Enter")
    status = compare.locator("[data-role='status']")
    page.wait_for_function(
        "(el) => el.textContent.startsWith('error')", arg=status.element_handle()
    )
    assert "gamma" in status.inner_text()
    assert cell_pixels(compare) == after_gamma

    # A column from the presets: exactly one more column of cells; the others stay as drawn.
    compare.locator("[data-role='add-column']").select_option("epsilon_alpha2_beta1_flat")
    compare.locator("[data-role='add-column-button']").click()
    page.wait_for_function(
        "(root) => root.querySelectorAll(\"[data-role='column']\").length === 3",
        arg=compare.element_handle(),
    )
    wait_settled(page, compare)
    assert column_ids(compare) == [0, 1, 2]
    assert cells.count() == ROWS * 3
    assert compare.locator("[data-role='cell'][data-col='2']").count() == ROWS
    with_column = cell_pixels(compare)
    assert {key: with_column[key] for key in after_gamma} == after_gamma
    assert int(compare.get_attribute("data-compute-count")) == computed + 2
    names = ast.literal_eval(jupyter.run_new_cell("compare.column_names").strip())
    assert len(names) == 3 and names[:2] == ["EpsilonPlusFlat", "EpsilonGammaBox"]

    # 30 rapid slider moves: the kernel ends with the last value (newest pending edit kept).
    gamma_slider = compare.locator("[data-role='column'][data-col='1'] [data-param='gamma']")
    # The number box keeps showing the user's newest value while older answers arrive
    # (the helper reads it right after the last move); the last move's γ is step / 100.
    shown = float(rapid_slides(gamma_slider, moves=30, low=20))
    final = int(gamma_slider.evaluate("(slider) => slider.value")) / 100
    assert shown == final
    wait_settled(page, compare)
    gamma = jupyter.run_new_cell('compare.columns[1]["params"]["gamma"]')
    assert float(gamma.strip()) == final
    assert float(box.input_value()) == final  # once settled, the box shows it too
    assert "ready" in status.inner_text()
    with_column = cell_pixels(compare)

    # A pasted JSON config adds a column; its remove button takes it away again.
    config = jupyter.run_new_cell('print(compare.column_config("EpsilonPlusFlat"))')
    compare.locator("[data-role='paste-config']").fill(config)
    compare.locator("[data-role='add-config-button']").click()
    page.wait_for_function(
        "(root) => root.querySelectorAll(\"[data-role='column']\").length === 4",
        arg=compare.element_handle(),
    )
    wait_settled(page, compare)
    assert column_ids(compare) == [0, 1, 2, 3]
    compare.locator("[data-role='column'][data-col='3'] [data-role='remove-column']").click()
    page.wait_for_function(
        "(root) => root.querySelectorAll(\"[data-role='cell']\").length === 9",
        arg=compare.element_handle(),
    )
    # Moving a column moves its cells; the pixels of every cell stay as they were.
    compare.locator("[data-role='column'][data-col='2'] [data-role='move-left']").click()
    page.wait_for_function(
        "(root) => root.querySelector(\"[data-role='column']:nth-child(3)\").dataset.col === '2'",
        arg=compare.element_handle(),
    )
    assert column_ids(compare) == [0, 2, 1]
    first_row = compare.locator("[data-role='row'][data-row='0'] [data-role='cell']")
    assert first_row.evaluate_all("cells => cells.map((c) => c.dataset.col)") == ["0", "2", "1"]
    compare.locator("[data-role='column'][data-col='2'] [data-role='move-right']").click()
    page.wait_for_function(
        "(root) => root.querySelector(\"[data-role='column']:nth-child(4)\").dataset.col === '2'",
        arg=compare.element_handle(),
    )
    wait_settled(page, compare)
    assert cell_pixels(compare) == with_column

    # Sorting by relevance mass of the first column: rows follow the values shown, both ways.
    requests = compare.get_attribute("data-requests")
    assert compare.evaluate(ROW_ORDER_JS) == list(range(ROWS))
    compare.locator("[data-role='sort-column']").select_option("0")
    compare.locator("[data-role='sort-score']").select_option("relevance_mass")
    values = score_values(compare, "relevance_mass", 0)
    assert values == sorted(values, reverse=True)  # higher is better: best first
    descending = compare.evaluate(ROW_ORDER_JS)
    assert sorted(descending) == list(range(ROWS)) and descending != list(range(ROWS))
    compare.locator("[data-role='sort-direction']").click()
    values = score_values(compare, "relevance_mass", 0)
    assert values == sorted(values)
    assert compare.evaluate(ROW_ORDER_JS) == descending[::-1] or len(set(values)) < ROWS
    assert compare.get_attribute("data-requests") == requests

    # Difference view against the first column: the other columns change, the reference not.
    compare.locator("[data-role='reference']").select_option("0")
    wait_cells_change(page, compare, with_column)
    assert compare.locator("[data-role='column'][data-reference='true']").count() == 1
    difference = cell_pixels(compare)
    assert {key.split(":")[1] for key in changed(with_column, difference)} == {"1", "2"}
    compare.locator("[data-role='reference']").select_option("-1")
    wait_cells_change(page, compare, difference)
    assert cell_pixels(compare) == with_column
    assert compare.get_attribute("data-requests") == requests

    # Hover: the same pixel is marked in every cell.
    first = compare.locator("[data-role='cell'][data-row='0'][data-col='0'] [data-role='heatmap']")
    box = first.bounding_box()
    # The pointer at the centre of heatmap pixel (16, 32) of the 64×64 map.
    first.hover(position={"x": 16.5 * box["width"] / 64, "y": 32.5 * box["height"] / 64})
    assert compare.get_attribute("data-hover") == "16,32"
    visible = compare.locator(".lrp-crosshair-v:not([hidden])")
    assert visible.count() == ROWS * 3
    page.mouse.move(0, 0)
    page.wait_for_function("(root) => !('hover' in root.dataset)", arg=compare.element_handle())

    # The long scores: faithfulness fills in; its value opens the cell's MoRF/LeRF curves. The
    # progress bar is shown only while they run.
    progress = compare.locator("[data-role='progress']")
    assert progress.count() == 1 and progress.is_hidden()
    compare.locator("[data-role='compute-scores']").click()
    page.wait_for_function(
        """(root) => [...root.querySelectorAll("[data-score='faithfulness']")].every(
            (el) => el.textContent !== "–")""",
        arg=compare.element_handle(),
    )
    wait_settled(page, compare)
    progress.wait_for(state="hidden")
    cell = compare.locator("[data-role='cell'][data-row='0'][data-col='1']")
    cell.locator("[data-score='faithfulness']").click()
    curve = cell.locator("[data-role='curve']")
    curve.wait_for()
    assert curve.locator("polyline").count() == 2

    # A cell downloads as a PNG, made in the page.
    requests = compare.get_attribute("data-requests")
    with page.expect_download() as download:
        cell.locator("[data-role='download']").click()
    assert download.value.suggested_filename.endswith(".png")
    assert compare.get_attribute("data-requests") == requests

    # Python → page: a trait set in the kernel changes the page (one colour bar per row).
    assert jupyter.run_new_cell('compare.normalization = "row"; compare.normalization') == "'row'"
    page.wait_for_function(
        "(root) => root.querySelectorAll(\"[data-role='colorbar']\").length === 3",
        arg=compare.element_handle(),
    )
    assert compare.locator("[data-role='normalization']").input_value() == "row"

    # The README's picture: grid normalisation, rows in input order.
    compare.locator("[data-role='normalization']").select_option("grid")
    compare.locator("[data-role='sort-score']").select_option("")
    cell.locator("[data-score='faithfulness']").click()  # fold the curve again
    compare.locator("[data-role='paste-config']").fill("")
    page.mouse.move(0, 0)
    page.set_viewport_size({"width": 1400, "height": 2000})  # the whole grid in view
    compare.scroll_into_view_if_needed()
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "compare.png"
    compare.screenshot(path=str(shot))
    publish(shot)

    # Legible in JupyterLab's light and dark themes (WCAG contrast of names and dim labels).
    texts = [
        (compare.locator("[data-role='column'] .lrp-column-title").first, 4.5),
        (compare.locator(".lrp-score-name").first, 3.0),
        (compare.locator("[data-role='status']"), 3.0),
    ]
    for element, minimum in texts:
        assert element.evaluate(CONTRAST_JS) >= minimum
    light_background = compare.evaluate("(el) => getComputedStyle(el).backgroundColor")
    set_theme(page, "JupyterLab Dark", light=False)
    try:
        page.wait_for_function(
            "([el, before]) => getComputedStyle(el).backgroundColor !== before",
            arg=[compare.element_handle(), light_background],
        )
        for element, minimum in texts:
            assert element.evaluate(CONTRAST_JS) >= minimum
        compare.screenshot(path=str(ARTIFACTS / "compare-dark.png"))
    finally:  # the theme is a server-side setting: leave it as other tests expect it
        set_theme(page, "JupyterLab Light", light=True)
