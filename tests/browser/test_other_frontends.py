"""The widgets in the front ends next to JupyterLab: marimo (``marimo run`` and ``marimo edit``,
through ``mo.ui.anywidget``) and Jupyter Notebook 7, driven in headless Chromium.

In each: the Explorer renders and a kernel answers its ping (status ``data-connection="kernel"``,
never "view only"); a rule change re-colours the heatmap through the kernel; a colormap change
re-colours it in the page alone; the Compare renders every cell and re-colours on a colormap
change (in Notebook 7 it also gains a column from its toolbar); and no widget error reaches the
browser console. Both apps explain two demo images, so each test stays short.
"""

from __future__ import annotations

import nbformat
import pytest
from _compare_page import wait_settled as wait_compare_settled
from _frontend_checks import BrowserErrors, compare_colormap, explorer_rule_and_colormap
from conftest import start_marimo, stop_server

pytestmark = pytest.mark.browser

SETUP = """\
from lrp_widgets import Compare, Explorer
from lrp_widgets.demo import demo_canonizers, load_model, make_batch

images, _labels, _masks = make_batch(2)
explorer_widget = Explorer(load_model(), images, canonizers=demo_canonizers())
compare_widget = Compare(
    load_model(), images, ["EpsilonPlusFlat", None], canonizers=demo_canonizers()
)"""


def marimo_app() -> str:
    """A marimo notebook: the setup, then each widget in its own cell (``mo.ui.anywidget``)."""
    setup = "\n".join(f"    {line}" if line else "" for line in SETUP.splitlines())
    return f"""import marimo

app = marimo.App()


@app.cell
def _():
    import marimo as mo

{setup}
    return compare_widget, explorer_widget, mo


@app.cell
def _(explorer_widget, mo):
    explorer = mo.ui.anywidget(explorer_widget)
    explorer
    return


@app.cell
def _(compare_widget, mo):
    compare = mo.ui.anywidget(compare_widget)
    compare
    return


if __name__ == "__main__":
    app.run()
"""


@pytest.mark.parametrize("mode", ["run", "edit"])
def test_explorer_and_compare_in_marimo(page, tmp_path_factory, mode):
    base = tmp_path_factory.mktemp(f"marimo-{mode}")
    app = base / "lrp_widgets_app.py"
    app.write_text(marimo_app())
    server = start_marimo(app, base, mode)
    try:
        errors = BrowserErrors(page)
        page.goto(server.url)
        explorer = page.locator(".lrp-explorer")
        explorer.wait_for(timeout=120_000)
        explorer_rule_and_colormap(page, explorer)
        compare = page.locator(".lrp-compare")
        compare.wait_for()
        compare_colormap(page, compare)
        assert errors.widget_errors() == []
    finally:
        stop_server(server)


NOTEBOOK = "other_frontends_test.ipynb"


def write_notebook(root) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(SETUP),
        nbformat.v4.new_code_cell("explorer_widget"),
        nbformat.v4.new_code_cell("compare_widget"),
    ]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(notebook, root / NOTEBOOK)


def test_explorer_and_compare_in_notebook7(page, jupyter, notebook_server):
    write_notebook(notebook_server.root)
    errors = BrowserErrors(page)
    page.goto(f"{notebook_server.url}/notebooks/{NOTEBOOK}")
    jupyter.wait_for_notebook()
    jupyter.run_all_cells()
    explorer = page.locator(".lrp-explorer")
    explorer.wait_for()
    explorer_rule_and_colormap(page, explorer)

    compare = page.locator(".lrp-compare")
    compare.wait_for()
    compare_colormap(page, compare)
    columns = compare.locator("[data-role='column']")
    assert columns.count() == 2
    compare.locator("[data-role='add-column']").select_option("epsilon_gamma_box")
    compare.locator("[data-role='add-column-button']").click()
    page.wait_for_function(
        "(root) => root.querySelectorAll(\"[data-role='column']\").length === 3",
        arg=compare.element_handle(),
    )
    wait_compare_settled(page, compare, timeout_ms=60_000)
    assert errors.widget_errors() == []
