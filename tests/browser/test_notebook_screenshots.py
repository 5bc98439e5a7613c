"""Tutorial notebooks 02-04 in real JupyterLab: every cell runs, the widgets render, and the
most telling output is photographed for the README.

Screenshots go to ``test-artifacts/notebook-0N.png``; with ``LRP_UPDATE_SCREENSHOTS=1`` they are
also copied to ``docs/images/`` (as the Explorer's picture is), so a normal run leaves the
repository unchanged.
"""

from __future__ import annotations

from pathlib import Path

from _compare_page import wait_settled as wait_compare_settled
from _explorer_page import wait_settled as wait_explorer_settled
from _lab_page import ARTIFACTS, publish
from PIL import Image, ImageDraw, ImageFont


def screenshot_top(page, element, path: Path, max_height: int = 1100) -> None:
    """Screenshot the top of ``element`` (at most ``max_height`` pixels): a tall widget inside
    JupyterLab's scrolling notebook cannot be captured whole, and the README wants it short."""
    page.set_viewport_size({"width": 1400, "height": max_height + 200})
    element.evaluate("(el) => el.scrollIntoView({block: 'start'})")
    box = element.bounding_box()
    height = min(box["height"], max_height, page.viewport_size["height"] - box["y"])
    clip = {"x": box["x"], "y": box["y"], "width": box["width"], "height": height}
    page.screenshot(path=str(path), clip=clip)


def run_notebook(page, jupyter, server, name: str) -> None:
    # a workspace of its own: no tab of another notebook of this module's server is restored
    workspace = Path(name).stem.replace("_", "-")
    page.goto(f"{server.url}/lab/workspaces/{workspace}/tree/{name}?reset")
    jupyter.wait_for_notebook()
    jupyter.run_all_cells()  # raises if a cell printed a traceback


def test_custom_rules_notebook(page, jupyter, lab_server):
    run_notebook(page, jupyter, lab_server, "02_custom_rules.ipynb")
    compare = page.locator(".lrp-compare")
    compare.wait_for()
    wait_compare_settled(page, compare)
    headers = compare.locator("[data-role='column']")
    assert headers.count() == 3
    assert "with PositiveWeights" in headers.nth(1).inner_text()
    page.mouse.move(0, 0)
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "notebook-02.png"
    screenshot_top(page, compare, shot)
    publish(shot)


def test_comparing_rules_notebook(page, jupyter, lab_server):
    run_notebook(page, jupyter, lab_server, "03_comparing_rules.ipynb")
    compare = page.locator(".lrp-compare")
    compare.wait_for()
    wait_compare_settled(page, compare)
    assert compare.locator("[data-role='column']").count() == 5
    # compute_scores() ran in the notebook: the faithfulness values reached the page
    faithfulness = compare.locator("[data-score='faithfulness']")
    page.wait_for_function(
        """(root) => {
            const values = [...root.querySelectorAll("[data-score='faithfulness']")];
            return values.length === 40 && values.every((v) => /\\d/.test(v.textContent));
        }""",
        arg=compare.element_handle(),
    )
    assert faithfulness.count() == 40  # 8 images x 5 columns
    page.mouse.move(0, 0)
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "notebook-03.png"
    screenshot_top(page, compare, shot)
    publish(shot)


def test_canonizers_notebook(page, jupyter, lab_server):
    run_notebook(page, jupyter, lab_server, "04_canonizers_and_residuals.ipynb")
    explorers = page.locator(".lrp-explorer")
    explorers.nth(1).wait_for()
    assert explorers.count() == 2
    # The notebook ends on the default composite (biases keep relevance); the picture shows
    # the bias-free comparison of section 4.
    jupyter.run_new_cell('canonized_explorer.set_composite(bias_free)\n"done"')
    plain, canonized = explorers.nth(0), explorers.nth(1)
    for explorer in (plain, canonized):
        wait_explorer_settled(page, explorer)
    assert canonized.locator("[data-health-layer='block.canonizer_sum']").count() == 1
    assert plain.locator("[data-health-layer='block.canonizer_sum']").count() == 0
    for explorer in (plain, canonized):  # every layer listed in both
        rows = explorer.locator("[data-role='health'] [data-health-layer]")
        assert rows.count() > 20
    assert canonized.locator("[data-health-layer]:not([data-violation=''])").count() == 0
    # without canonizers the residual `+` creates relevance outside modules: one last row
    flagged = plain.locator("[data-health-layer]:not([data-violation=''])")
    assert flagged.count() == 1
    assert flagged.get_attribute("data-health-layer") == "(outside modules)"
    assert flagged.get_attribute("data-violation") == "created"
    last = plain.locator("[data-role='health'] [data-health-layer]").last
    assert last.get_attribute("data-health-layer") == "(outside modules)"
    assert canonized.locator("[data-health-layer='(outside modules)']").count() == 0
    page.mouse.move(0, 0)
    ARTIFACTS.mkdir(exist_ok=True)
    panels = []
    for i, explorer in enumerate((plain, canonized)):
        path = ARTIFACTS / f"notebook-04-health-{i}.png"
        health = explorer.locator("[data-role='health']")
        # the panel scrolls after a few rows; show every layer in the picture
        health.evaluate("(el) => { el.style.maxHeight = 'none'; el.style.overflowY = 'visible'; }")
        health.screenshot(path=str(path))
        panels.append(Image.open(path).convert("RGB"))
    shot = ARTIFACTS / "notebook-04.png"
    side_by_side(panels, ["without canonizers", "with demo_canonizers()"]).save(shot)
    publish(shot)


def side_by_side(images: list[Image.Image], titles: list[str]) -> Image.Image:
    """The images next to each other on white, each with its title above it."""
    gap, title_height = 24, 32
    font = ImageFont.load_default(size=18)
    width = sum(image.width for image in images) + gap * (len(images) + 1)
    height = max(image.height for image in images) + title_height + gap
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    x = gap
    for image, title in zip(images, titles, strict=True):
        draw.text((x, 6), title, fill="black", font=font)
        canvas.paste(image, (x, title_height))
        x += image.width + gap
    return canvas
