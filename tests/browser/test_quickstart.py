"""The quickstart notebook in real JupyterLab and Notebook 7, driven in headless Chromium.

Checks the Explorer's testing contract (root ``.lrp-explorer``, one ``[data-layer]`` row per
module, ``[data-role=status]`` saying ``ready``) and both directions of the selection sync:
``explorer.select(...)`` in the notebook marks rows, and a click changes ``explorer.selected``.

Then the live explanation: selecting a layer and changing its rule and a parameter changes the
heatmap's pixels and the row's badge; a colormap change recolours without any kernel message;
an invalid value shows an inline error while the widget keeps working; 50 rapid slider moves end
in the heatmap of the final value.

Screenshots: ``test-artifacts/explorer*.png``; with ``LRP_UPDATE_SCREENSHOTS=1`` the
interaction test also writes ``docs/images/explorer.png`` (the README's picture).
"""

from __future__ import annotations

import ast

import pytest
import torch
from _explorer_page import SLIDE_JS, pixels, rapid_slides, wait_pixels_change, wait_settled
from _lab_page import ARTIFACTS, CONTRAST_JS, publish, set_theme

from lrp_widgets.demo import build_model, demo_canonizers

pytestmark = pytest.mark.browser

NOTEBOOK = "01_quickstart.ipynb"
DEMO_MODEL = build_model().eval()  # load_model()'s module tree, without reading the weights


def canonized_module_names() -> list[str]:
    """Module names while the demo canonizers are applied, as the Explorer (which keeps them
    applied for its lifetime) lists them: the model's own plus ``block.canonizer_sum``."""
    applied = [instance for c in demo_canonizers() for instance in c.apply(DEMO_MODEL)]
    try:
        return [name for name, _ in DEMO_MODEL.named_modules() if name]
    finally:
        for instance in reversed(applied):
            instance.remove()


MODULE_NAMES = canonized_module_names()
# The notebook ends with explorer.select(the first two Conv2d layers).
NOTEBOOK_SELECTION = [
    name for name, module in DEMO_MODEL.named_modules() if isinstance(module, torch.nn.Conv2d)
][:2]


def row_names(explorer) -> list[str]:
    return explorer.locator("[data-layer]").evaluate_all(
        "rows => rows.map((row) => row.dataset.layer)"
    )


def selected_rows(explorer) -> list[str]:
    return explorer.locator("[data-layer][aria-selected='true']").evaluate_all(
        "rows => rows.map((row) => row.dataset.layer)"
    )


def test_quickstart_explorer_in_jupyterlab(page, jupyter, lab_server):
    page.goto(f"{lab_server.url}/lab/tree/{NOTEBOOK}")
    jupyter.wait_for_notebook()
    jupyter.run_all_cells()

    explorer = page.locator(".lrp-explorer")
    explorer.wait_for()
    assert explorer.count() == 1
    status = explorer.locator("[data-role='status']")
    assert "ready" in status.inner_text()

    # The tree lists every module of the demo model (the root is the header, not a row), with
    # the residual sum module the canonizers add.
    assert "block.canonizer_sum" in MODULE_NAMES
    assert row_names(explorer) == MODULE_NAMES

    # Python → view: the notebook's last cell selected the first two convolutions.
    page.wait_for_function(
        """(expected) => {
            const rows = document.querySelectorAll(".lrp-explorer [aria-selected='true']");
            return [...rows].map((r) => r.dataset.layer).join() === expected.join();
        }""",
        arg=NOTEBOOK_SELECTION,
    )

    # View → Python: click a row that is not selected yet, Ctrl-click a second one, and read
    # the trait in the kernel.
    first, second = [n for n in MODULE_NAMES if "." in n and n not in NOTEBOOK_SELECTION][:2]
    explorer.locator(f"[data-layer='{first}']").click()
    assert selected_rows(explorer) == [first]
    explorer.locator(f"[data-layer='{second}']").click(modifiers=["Control"])
    assert selected_rows(explorer) == [first, second]
    output = jupyter.run_new_cell("explorer.selected")
    assert ast.literal_eval(output.strip()) == [first, second]
    assert "ready" in status.inner_text() and "2 selected" in status.inner_text()

    # Branches fold: the parent's toggle hides its children and shows them again.
    parent = first.rpartition(".")[0]
    child = explorer.locator(f"[data-layer='{first}']")
    explorer.locator(f"[data-layer='{parent}'] [data-role='toggle']").click()
    child.wait_for(state="hidden")
    explorer.locator(f"[data-layer='{parent}'] [data-role='toggle']").click()
    child.wait_for(state="visible")

    ARTIFACTS.mkdir(exist_ok=True)
    explorer.screenshot(path=str(ARTIFACTS / "explorer-selection.png"))


def test_rules_parameters_colormap_and_errors(page, jupyter, lab_server):
    page.goto(f"{lab_server.url}/lab/tree/{NOTEBOOK}")
    jupyter.wait_for_notebook()
    jupyter.run_all_cells()
    explorer = page.locator(".lrp-explorer")
    explorer.wait_for()
    wait_settled(page, explorer)
    status = explorer.locator("[data-role='status']")
    row = explorer.locator("[data-layer='features.0']")
    before = pixels(explorer)

    # Rule: Flat (the composite's, on the first layer) → Epsilon; the badge and pixels follow.
    row.click()
    rule_select = explorer.locator("[data-role='rule-select']")
    assert rule_select.input_value() == "Flat" and row.get_attribute("data-rule") == "Flat"
    rule_select.select_option("Epsilon")
    explorer.locator("[data-layer='features.0'][data-rule='Epsilon']").wait_for()
    assert row.get_attribute("data-origin") == "override"
    after_rule = wait_pixels_change(page, explorer, before)

    # Parameter: ε slider to its top (10, log scale) → a new heatmap and the badge's values.
    slider = explorer.locator("[data-param='epsilon']")
    slider.evaluate(SLIDE_JS, 200)
    after_param = wait_pixels_change(page, explorer, after_rule)
    wait_settled(page, explorer)
    assert "epsilon=10" in row.locator(".lrp-badge").get_attribute("title")

    # Colormap and opacity: redrawn in the browser, no message to the kernel, no computation.
    requests = explorer.get_attribute("data-requests")
    computed = explorer.get_attribute("data-compute-count")
    explorer.locator("[data-role='cmap-select']").select_option("coldnhot")
    recoloured = wait_pixels_change(page, explorer, after_param)
    explorer.locator("[data-role='opacity']").evaluate(SLIDE_JS, 0.4)
    wait_pixels_change(page, explorer, recoloured)
    assert explorer.get_attribute("data-requests") == requests
    assert explorer.get_attribute("data-compute-count") == computed
    shown = pixels(explorer)

    # An invalid value: inline error, the last good heatmap stays, the widget keeps working.
    box = explorer.locator("[data-param-text='epsilon']")
    box.fill("-1")
    box.press("Enter")
    page.wait_for_function(
        "(el) => el.textContent.startsWith('error')", arg=status.element_handle()
    )
    assert "epsilon" in status.inner_text()
    assert pixels(explorer) == shown
    box.fill("0.5")
    box.press("Enter")
    wait_pixels_change(page, explorer, shown)
    wait_settled(page, explorer)

    # 50 rapid slider moves (5 to 30 ms apart): the heatmap drawn answers the last request,
    # which carried the final value.
    final = rapid_slides(explorer.locator("[data-param='epsilon']"), moves=50, low=40)
    wait_settled(page, explorer)
    assert explorer.get_attribute("data-drawn-request") == explorer.get_attribute("data-answered")
    kernel_value = jupyter.run_new_cell('explorer.rules["features.0"]["params"]["epsilon"]')
    assert float(kernel_value.strip()) == float(final)
    assert "ready" in status.inner_text()

    # Health panel: clicking a layer shows its channel-summed relevance map (32×32 pixels at
    # the output of features.4), with its top channels; the button goes back to the input.
    canvas = explorer.locator("[data-role='heatmap']")
    explorer.locator("[data-health-layer='features.4']").click()
    page.wait_for_function("(canvas) => canvas.width === 32", arg=canvas.element_handle())
    assert "top channels" in explorer.locator("[data-role='heatmap-source']").inner_text()
    assert selected_rows(explorer) == ["features.4"]
    explorer.locator("[data-role='heatmap-source'] button").click()
    page.wait_for_function("(canvas) => canvas.width === 64", arg=canvas.element_handle())
    explorer.locator("[data-layer='features.0']").click()

    # Hovering the heatmap shows the value under the pointer.
    canvas.hover(position={"x": 128, "y": 128})
    assert "R =" in explorer.locator("[data-role='hover-value']").inner_text()

    # Target: another class from the picker → one computation in the kernel, new pixels.
    computed = int(explorer.get_attribute("data-compute-count"))
    shown = pixels(explorer)
    explorer.locator("[data-role='target-select']").select_option("1")
    wait_pixels_change(page, explorer, shown)
    assert int(explorer.get_attribute("data-compute-count")) == computed + 1
    explorer.locator("[data-role='target-select']").select_option("predicted")
    wait_settled(page, explorer)

    # Bulk: every Conv2d within the residual block gets Gamma; other convolutions keep theirs.
    explorer.locator("[data-layer='block.conv1']").click()
    explorer.locator("[data-role='scope']").select_option("type:block")
    rule_select.select_option("Gamma")
    explorer.locator("[data-layer='block.conv2'][data-rule='Gamma']").wait_for()
    assert explorer.locator("[data-layer='block.conv1']").get_attribute("data-rule") == "Gamma"
    assert explorer.locator("[data-layer='head.0']").get_attribute("data-rule") == "ZPlus"
    wait_settled(page, explorer)
    explorer.locator("[data-layer='features.0']").click()

    # The README's picture: the default colormap and opacity.
    explorer.locator("[data-role='cmap-select']").select_option("bwr")
    explorer.locator("[data-role='opacity']").evaluate(SLIDE_JS, 0.85)
    page.mouse.move(0, 0)  # no hover highlight in the screenshot
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "explorer.png"
    explorer.screenshot(path=str(shot))
    publish(shot)


def test_quickstart_explorer_in_notebook7(page, jupyter, notebook_server):
    page.goto(f"{notebook_server.url}/tree")
    link = page.locator(".jp-DirListing-item", has_text=NOTEBOOK)
    with page.context.expect_page() as opened:
        link.dblclick()
    notebook = opened.value
    ui = jupyter.on(notebook)
    ui.wait_for_notebook()
    ui.run_all_cells()

    explorer = notebook.locator(".lrp-explorer")
    explorer.wait_for()
    assert row_names(explorer) == MODULE_NAMES
    assert "ready" in explorer.locator("[data-role='status']").inner_text()


# WCAG contrast ratio of an element's text against the first opaque background behind it:
# (L_light + 0.05) / (L_dark + 0.05), L the relative luminance of the sRGB colour; a text colour
# with alpha is first blended over that background.
def test_explorer_is_legible_in_both_themes(page, jupyter, lab_server):
    page.goto(f"{lab_server.url}/lab/tree/{NOTEBOOK}")
    jupyter.wait_for_notebook()
    jupyter.run_all_cells()
    explorer = page.locator(".lrp-explorer")
    explorer.wait_for()
    selected = explorer.locator("[data-layer][aria-selected='true'] .lrp-name").first
    plain = explorer.locator("[data-layer][aria-selected='false'] .lrp-name").first
    secondary = explorer.locator("[data-layer] .lrp-type").first

    def check_contrast(theme: str) -> None:
        for element, minimum in ((selected, 4.5), (plain, 4.5), (secondary, 3.0)):
            ratio = element.evaluate(CONTRAST_JS)
            assert ratio >= minimum, f"{theme}: contrast {ratio:.2f} < {minimum}"

    page.wait_for_selector("body[data-jp-theme-light='true']", state="attached")
    check_contrast("JupyterLab Light")

    light_background = explorer.evaluate("(el) => getComputedStyle(el).backgroundColor")
    set_theme(page, "JupyterLab Dark", light=False)
    try:
        page.wait_for_function(  # the dark theme's stylesheet has reached the widget
            "([el, before]) => getComputedStyle(el).backgroundColor !== before",
            arg=[explorer.element_handle(), light_background],
        )
        check_contrast("JupyterLab Dark")
        ARTIFACTS.mkdir(exist_ok=True)
        explorer.screenshot(path=str(ARTIFACTS / "explorer-dark.png"))
    finally:  # the theme is a server-side setting: leave it as other tests expect it
        set_theme(page, "JupyterLab Light", light=True)
