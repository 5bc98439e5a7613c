"""Helpers shared by the browser tests and ``benchmarks/bench_explorer.py``: reading the
Explorer's canvas and waiting for its kernel round trips on a Playwright page."""

from __future__ import annotations

# A short fingerprint of the heatmap canvas' pixels (FNV-1a over the RGBA bytes).
PIXELS_JS = """(canvas) => {
    const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    let hash = 2166136261;
    for (let i = 0; i < data.length; i++) hash = Math.imul(hash ^ data[i], 16777619) >>> 0;
    return `${canvas.width}x${canvas.height}:${hash}`;
}"""

# Moves a slider to `value` the way a user's drag does: set the value, fire `input`.
SLIDE_JS = """(slider, value) => {
    slider.value = String(value);
    slider.dispatchEvent(new Event("input", { bubbles: true }));
}"""

# `moves` rapid slider moves the way a user's fast drag does (a few ms apart, varying values);
# resolves to the value the slider's text field shows at the end.
RAPID_SLIDES_JS = """async (slider, [moves, low]) => {
    for (let i = 0; i < moves; i++) {
        slider.value = String(low + ((i * 37) % 150));
        slider.dispatchEvent(new Event("input", { bubbles: true }));
        await new Promise((done) => setTimeout(done, 5 + ((i * 7) % 26)));
    }
    return slider.parentElement.querySelector("[data-param-text]").value;
}"""


def rapid_slides(slider, moves: int, low: int) -> str:
    """Move ``slider`` (a locator) ``moves`` times in quick succession; return the final text."""
    return slider.evaluate(RAPID_SLIDES_JS, [moves, low])


# True once every request sent was answered and the newest heatmap is drawn.
SETTLED_JS = """(root) => root.dataset.busy === "false"
    && !root.querySelector("[data-pending='true']")
    && root.querySelector("[data-role='status']").textContent.startsWith("ready")"""


def pixels(explorer) -> str:
    """Fingerprint of the heatmap currently drawn."""
    return explorer.locator("[data-role='heatmap']").evaluate(PIXELS_JS)


def wait_settled(page, explorer, timeout_ms: float = 20_000) -> None:
    """Wait until no request is in flight and the status says ready."""
    page.wait_for_function(SETTLED_JS, arg=explorer.element_handle(), timeout=timeout_ms)


def wait_pixels_change(page, explorer, before: str, timeout_ms: float = 20_000) -> str:
    """Wait until the heatmap's pixels differ from ``before``; return the new fingerprint."""
    page.wait_for_function(
        f"([canvas, before]) => ({PIXELS_JS})(canvas) !== before",
        arg=[explorer.locator("[data-role='heatmap']").element_handle(), before],
        timeout=timeout_ms,
    )
    return pixels(explorer)
