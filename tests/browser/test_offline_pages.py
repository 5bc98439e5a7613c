"""The widgets without a kernel, opened from ``file://`` in headless Chromium with the network off.

- An executed notebook exported with ``jupyter nbconvert --to html`` shows each widget's static
  fallback picture (its display data's ``image/png``). The notebook is saved as JupyterLab saves
  it by default, without the widget state: with a stored state nbconvert prefers the widget view,
  whose renderer scripts come from a CDN (see the README).
- ``save_html`` pages of the Explorer and the Compare draw the relevance, say they have no
  kernel, disable the controls that need one and re-draw on the controls that do not (colormap,
  opacity, scale, sample). Nothing is fetched (``page.refused`` stays empty).
- A page whose kernel never answers (the standalone page with its "I have no kernel" mark
  removed, so it waits like a page whose kernel is gone) turns view only after the wait.
"""

from __future__ import annotations

import base64
import io
import subprocess
import sys

import nbformat
import pytest
from _compare_page import CELL_COLOURS_JS, cell_pixels, wait_cells_change
from _explorer_page import SLIDE_JS, pixels, wait_pixels_change
from matplotlib.image import imread
from nbclient import NotebookClient

from lrp_widgets import Compare, Explorer
from lrp_widgets.demo import demo_canonizers, load_model, make_batch

pytestmark = pytest.mark.browser

VIEW_ONLY = "no kernel connected: view only"
SETUP = """\
from lrp_widgets import Compare, Explorer
from lrp_widgets.demo import demo_canonizers, load_model, make_batch

images, _labels, _masks = make_batch(2)"""
# Distinct RGB colours on a canvas: a drawn map has many, a blank canvas one.
COLOURS_JS = """(canvas) => {
    const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    const seen = new Set();
    for (let i = 0; i < data.length; i += 4) {
        seen.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
    }
    return seen.size;
}"""


def executed_notebook(folder) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(SETUP),
        nbformat.v4.new_code_cell("Explorer(load_model(), images, canonizers=demo_canonizers())"),
        nbformat.v4.new_code_cell(
            'Compare(load_model(), images, ["EpsilonPlusFlat", None], canonizers=demo_canonizers())'
        ),
    ]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        store_widget_state=False,  # JupyterLab's default when saving
        resources={"metadata": {"path": str(folder)}},
    )
    return client.execute()


def test_exported_notebook_shows_the_fallback_pictures_offline(offline_page, tmp_path):
    notebook = executed_notebook(tmp_path)
    pngs = [
        output["data"]["image/png"]
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if "image/png" in output.get("data", {})
    ]
    assert len(pngs) == 2  # the Explorer's and the Compare's
    path = tmp_path / "executed.ipynb"
    nbformat.write(notebook, path)
    subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", str(path)],
        check=True,
        capture_output=True,
        timeout=120,
    )

    offline_page.goto((tmp_path / "executed.html").as_uri())
    pictures = offline_page.locator(".jp-OutputArea-output img")
    pictures.first.wait_for()
    sizes = pictures.evaluate_all(
        "(images) => images.map((img) => img.complete ? [img.naturalHeight, img.naturalWidth] : [])"
    )
    expected = [list(imread(io.BytesIO(base64.b64decode(png))).shape[:2]) for png in pngs]
    assert sizes == expected
    box = pictures.first.bounding_box()
    assert box is not None and box["width"] > 100 and box["height"] > 100  # shown, not hidden


def open_standalone(page, path):
    page.goto(path.as_uri())
    page.wait_for_selector("body[data-rendered='true']")


@pytest.fixture(scope="module")
def images():
    return make_batch(2)[0]


def test_saved_explorer_page_draws_and_redraws_without_a_kernel(offline_page, tmp_path, images):
    explorer = Explorer(load_model(), images, canonizers=demo_canonizers())
    try:
        path = explorer.save_html(tmp_path / "explorer.html")
    finally:
        explorer.close()
    open_standalone(offline_page, path)
    root = offline_page.locator(".lrp-explorer")
    status = root.locator("[data-role='status']")
    assert status.inner_text().startswith(VIEW_ONLY)
    assert status.get_attribute("data-connection") == "none"
    canvas = root.locator("[data-role='heatmap']")
    assert canvas.evaluate(COLOURS_JS) > 20  # the relevance is drawn

    for role in ("rule-select", "composite-select", "target-select", "reset"):
        assert root.locator(f"[data-role='{role}']").is_disabled(), role
    root.locator("[data-layer='features.0']").click()  # selecting still works, rules stay off
    root.locator("[data-layer='features.0'][aria-selected='true']").wait_for()
    for role in ("rule-select", "reset"):
        assert root.locator(f"[data-role='{role}']").is_disabled(), role

    shown = pixels(root)
    root.locator("[data-role='cmap-select']").select_option("coldnhot")
    shown = wait_pixels_change(offline_page, root, shown)
    root.locator("[data-role='opacity']").evaluate(SLIDE_JS, 0.3)
    shown = wait_pixels_change(offline_page, root, shown)
    root.locator("[data-role='norm-select']").select_option("symmetric")
    shown = wait_pixels_change(offline_page, root, shown)
    root.locator("[data-role='thumbnail'][data-sample='1']").click()
    wait_pixels_change(offline_page, root, shown)
    assert offline_page.refused == []


def test_saved_compare_page_draws_and_redraws_without_a_kernel(offline_page, tmp_path, images):
    compare = Compare(load_model(), images, ["EpsilonPlusFlat", None], canonizers=demo_canonizers())
    try:
        path = compare.save_html(tmp_path / "compare.html")
    finally:
        compare.close()
    open_standalone(offline_page, path)
    root = offline_page.locator(".lrp-compare")
    status = root.locator("[data-role='status']")
    assert status.inner_text().startswith(VIEW_ONLY)
    colours = root.evaluate(CELL_COLOURS_JS)
    assert len(colours) == 4 and min(colours) > 1  # 2 inputs × 2 columns, none blank
    for role in ("add-column-button", "compute-scores", "remove-column"):
        assert root.locator(f"[data-role='{role}']").first.is_disabled(), role
    assert root.locator("[data-role='column'] [data-param]").first.is_disabled()

    before = cell_pixels(root)
    root.locator("[data-role='cmap-select']").select_option("coldnhot")
    wait_cells_change(offline_page, root, before)
    before = cell_pixels(root)
    root.locator("[data-role='normalization']").select_option("cell")
    wait_cells_change(offline_page, root, before)
    assert offline_page.refused == []


def test_a_page_whose_kernel_never_answers_turns_view_only(offline_page, tmp_path, images):
    explorer = Explorer(load_model(), images, canonizers=demo_canonizers())
    try:
        path = explorer.save_html(tmp_path / "silent.html")
    finally:
        explorer.close()
    page_text = path.read_text(encoding="utf-8")
    assert page_text.count("lrpStandalone = true") == 1
    path.write_text(page_text.replace("lrpStandalone = true", "lrpStandalone = false"))
    open_standalone(offline_page, path)
    root = offline_page.locator(".lrp-explorer")
    status = root.locator("[data-role='status']")
    assert status.get_attribute("data-connection") == "kernel"  # waiting for the ping's answer
    offline_page.wait_for_selector("[data-role='status'][data-connection='none']", timeout=15_000)
    assert status.inner_text().startswith(VIEW_ONLY)
    assert root.locator("[data-role='rule-select']").is_disabled()
    shown = pixels(root)
    root.locator("[data-role='cmap-select']").select_option("coldnhot")
    wait_pixels_change(offline_page, root, shown)
