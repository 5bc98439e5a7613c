"""The Explorer and the Compare paint the same relevance with the same pixels, in real JupyterLab.

One notebook builds an Explorer on two demo images and a Compare of the same model and images
whose only column is that Explorer (its configuration), with the same canonizers, so both
kernels compute bit-identical relevance (checked in the notebook). The page settings are made
equal: colormap ``bwr`` (both defaults), the 99th-percentile scale of each input's own map (the
Explorer's default; the Compare per cell), the map over the input (``show = "overlay"``) at the
same opacity. Then every RGBA byte of the Explorer's heatmap canvas must equal the Compare
cell's, for each input (the Explorer switches input with its thumbnails). Both canvases have
the heatmap's native resolution (64 × 64); the test checks that too.

Before both widgets drew through ``js/src/shared/paint.ts``, the Explorer blended over the
input's colours and the Compare over a grey copy, and this test failed.
"""

from __future__ import annotations

import nbformat
import numpy as np
import pytest
from _compare_page import wait_settled as wait_compare_settled
from _explorer_page import SLIDE_JS, pixels, wait_pixels_change
from _explorer_page import wait_settled as wait_explorer_settled

pytestmark = pytest.mark.browser

NOTEBOOK = "same_paint_test.ipynb"
SETUP = """\
import torch
from lrp_widgets import Compare, Explorer
from lrp_widgets.demo import demo_canonizers, load_model, make_batch

images, labels, masks = make_batch(2, seed=0)
explorer = Explorer(load_model(), images, canonizers=demo_canonizers())
compare = Compare(load_model(), images, {"explorer": explorer}, canonizers=demo_canonizers())
compare.normalization = "cell"
compare.show = "overlay"
same = torch.equal(explorer.relevance, compare.relevance("explorer"))
print("same relevance:", same)"""
SHOW_EXPLORER = "explorer"
SHOW_COMPARE = "compare"
OPACITY = 0.6

# RGBA bytes of a canvas with its size.
CANVAS_JS = """(canvas) => ({
    width: canvas.width,
    height: canvas.height,
    data: Array.from(canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data),
})"""


def write_notebook(root) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(SETUP),
        nbformat.v4.new_code_cell(SHOW_EXPLORER),
        nbformat.v4.new_code_cell(SHOW_COMPARE),
    ]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(notebook, root / NOTEBOOK)


def canvas_pixels(canvas) -> np.ndarray:
    """The canvas' RGBA bytes as ``[height, width, 4]``."""
    read = canvas.evaluate(CANVAS_JS)
    return np.array(read["data"], dtype=np.uint8).reshape(read["height"], read["width"], 4)


def assert_same_pixels(explorer_pixels: np.ndarray, cell_pixels: np.ndarray, row: int) -> None:
    assert explorer_pixels.shape == cell_pixels.shape == (64, 64, 4)
    differ = np.any(explorer_pixels != cell_pixels, axis=-1)
    if differ.any():
        largest = int(np.abs(explorer_pixels.astype(int) - cell_pixels.astype(int)).max())
        pytest.fail(
            f"input {row}: {int(differ.sum())} of {differ.size} pixels differ between the "
            f"Explorer and the Compare (largest difference {largest} of 255)"
        )


def test_explorer_and_compare_paint_the_same_pixels(page, jupyter, lab_server):
    write_notebook(lab_server.root)
    page.goto(f"{lab_server.url}/lab/tree/{NOTEBOOK}")
    jupyter.wait_for_notebook()
    jupyter.run_all_cells()
    assert page.locator(".jp-OutputArea-output", has_text="same relevance: True").count() == 1
    explorer = page.locator(".lrp-explorer")
    compare = page.locator(".lrp-compare")
    explorer.wait_for()
    compare.wait_for()
    wait_explorer_settled(page, explorer)
    wait_compare_settled(page, compare)

    # The same display settings on both pages.
    assert explorer.locator("[data-role='cmap-select']").input_value() == "bwr"
    assert compare.locator("[data-role='cmap-select']").input_value() == "bwr"
    assert explorer.locator("[data-role='norm-select']").input_value() == "percentile"
    assert explorer.locator("[data-role='reduce-select']").input_value() == "sum"
    assert compare.locator("[data-role='scale-by']").input_value() == "percentile"
    assert compare.locator("[data-role='normalization']").input_value() == "cell"
    assert compare.locator("[data-role='show']").input_value() == "overlay"
    before = pixels(explorer)
    explorer.locator("[data-role='opacity']").evaluate(SLIDE_JS, OPACITY)
    wait_pixels_change(page, explorer, before)
    compare.locator("[data-role='opacity']").evaluate(SLIDE_JS, OPACITY)

    heatmap = explorer.locator("[data-role='heatmap']")
    for row in (0, 1):
        if row > 0:  # the Explorer shows input `row`: click its thumbnail
            before = pixels(explorer)
            explorer.locator(f"[data-role='thumbnail'][data-sample='{row}']").click()
            wait_pixels_change(page, explorer, before)
            wait_explorer_settled(page, explorer)
        cell = compare.locator(f"[data-role='cell'][data-row='{row}'] [data-role='heatmap']")
        page.wait_for_function(
            "([canvas, opacity]) => canvas.width > 0 && canvas.closest('.lrp-compare')"
            ".querySelector(\"[data-role='opacity']\").value === String(opacity)",
            arg=[cell.element_handle(), OPACITY],
        )
        explorer_pixels = canvas_pixels(heatmap)
        # A real overlay, not a blank or flat canvas: many colours.
        assert len(np.unique(explorer_pixels.reshape(-1, 4), axis=0)) > 100
        assert_same_pixels(explorer_pixels, canvas_pixels(cell), row)
