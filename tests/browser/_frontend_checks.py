"""Checks shared by the browser tests of the other front ends (marimo, Notebook 7): what the
widgets must do in any of them, and the browser errors they must not cause."""

from __future__ import annotations

from _compare_page import cell_pixels, wait_cells_change
from _compare_page import wait_settled as wait_compare_settled
from _explorer_page import pixels, wait_pixels_change, wait_settled

#: words that mark a console error as the widgets' own (the hosts log unrelated ones, such as
#: a missing favicon, which are not the widgets' business)
WIDGET_WORDS = ("lrp", "anywidget", "widget", "render", "model")
#: where the hosts' own scripts are served from: an uncaught error thrown there is the host's
#: (Notebook 7 throws one while loading its settings); the widgets' code runs from blob: URLs
HOST_SCRIPTS = ("/static/notebook/", "/static/lab/", "/lab/extensions/", "/assets/")


def thrown_by_host(stack: str) -> bool:
    """Whether the innermost frame of ``stack`` is in one of the host's own scripts."""
    frames = [line.strip() for line in stack.splitlines() if line.strip().startswith("at ")]
    return bool(frames) and any(path in frames[0] for path in HOST_SCRIPTS)


class BrowserErrors:
    """Uncaught page errors and console errors of ``page`` from now on."""

    def __init__(self, page) -> None:
        self.uncaught: list[str] = []
        self.console: list[str] = []
        page.on("pageerror", self._on_error)
        page.on(
            "console",
            lambda message: self.console.append(message.text) if message.type == "error" else None,
        )

    def _on_error(self, error) -> None:
        stack = error.stack or ""
        if not thrown_by_host(stack):
            self.uncaught.append(f"{error}\n{stack}")

    def widget_errors(self) -> list[str]:
        """Uncaught errors not thrown by the host, and the console errors that concern the
        widgets."""
        mine = [text for text in self.console if any(w in text.lower() for w in WIDGET_WORDS)]
        return self.uncaught + mine


def explorer_rule_and_colormap(page, explorer) -> None:
    """A rule change (Flat → Epsilon on ``features.0``) re-colours the heatmap through the
    kernel; a colormap change re-colours it without one; a kernel answers throughout."""
    wait_settled(page, explorer, timeout_ms=60_000)
    status = explorer.locator("[data-role='status']")
    assert status.get_attribute("data-connection") == "kernel", status.inner_text()
    before = pixels(explorer)
    explorer.locator("[data-layer='features.0']").click()
    rule = explorer.locator("[data-role='rule-select']")
    assert rule.input_value() == "Flat"
    rule.select_option("Epsilon")
    explorer.locator("[data-layer='features.0'][data-rule='Epsilon']").wait_for()
    after_rule = wait_pixels_change(page, explorer, before)
    wait_settled(page, explorer)
    requests = explorer.get_attribute("data-requests")
    explorer.locator("[data-role='cmap-select']").select_option("coldnhot")
    wait_pixels_change(page, explorer, after_rule)
    assert explorer.get_attribute("data-requests") == requests  # drawn in the page alone
    assert status.get_attribute("data-connection") == "kernel"
    assert status.inner_text().startswith("ready")


def compare_colormap(page, compare) -> None:
    """Every cell is drawn and a colormap change re-colours them, without the kernel."""
    wait_compare_settled(page, compare, timeout_ms=60_000)
    before = cell_pixels(compare)
    assert before, "no cell drawn"
    requests = compare.get_attribute("data-requests")
    compare.locator("[data-role='cmap-select']").select_option("coldnhot")
    wait_cells_change(page, compare, before)
    assert compare.get_attribute("data-requests") == requests
