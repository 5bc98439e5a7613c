"""Helpers for the Compare widget's browser test: fingerprints of every cell's canvas and
waiting for the kernel's answers on a Playwright page (see the testing contract at the top of
``js/src/compare/index.ts``)."""

from __future__ import annotations

from _explorer_page import PIXELS_JS

# {"row:col": fingerprint} of every cell's canvas (FNV-1a over its RGBA bytes, as PIXELS_JS).
CELL_PIXELS_JS = f"""(root) => {{
    const pixels = {PIXELS_JS};
    const out = {{}};
    for (const cell of root.querySelectorAll("[data-role='cell']")) {{
        const canvas = cell.querySelector("[data-role='heatmap']");
        out[`${{cell.dataset.row}}:${{cell.dataset.col}}`] =
            canvas.width > 0 ? pixels(canvas) : "blank";
    }}
    return out;
}}"""

# Number of distinct RGB colours per cell canvas: a drawn map has many, a blank canvas one.
CELL_COLOURS_JS = """(root) => [...root.querySelectorAll(
    "[data-role='cell'] [data-role='heatmap']")].map((canvas) => {
        if (canvas.width === 0) return 0;
        const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
        const seen = new Set();
        for (let i = 0; i < data.length; i += 4) {
            seen.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
        }
        return seen.size;
    })"""

# True once nothing is in flight, the status says ready and every cell shows a heatmap.
SETTLED_JS = """(root) => root.dataset.busy === "false"
    && root.querySelector("[data-role='status']").textContent.startsWith("ready")
    && [...root.querySelectorAll("[data-role='cell'] [data-role='heatmap']")].every(
        (canvas) => canvas.width > 0)"""

# Input indices of the rows in their displayed (DOM) order.
ROW_ORDER_JS = """(root) => [...root.querySelectorAll("[data-role='row']")].map(
    (row) => Number(row.dataset.row))"""


def cell_pixels(compare) -> dict[str, str]:
    """Fingerprint of every cell, keyed ``"row:col"`` (row = input index, col = column id)."""
    return compare.evaluate(CELL_PIXELS_JS)


def wait_settled(page, compare, timeout_ms: float = 30_000) -> None:
    """Wait until no request is in flight, the status says ready and every cell is drawn."""
    page.wait_for_function(SETTLED_JS, arg=compare.element_handle(), timeout=timeout_ms)


def wait_cells_change(page, compare, before: dict[str, str], timeout_ms: float = 30_000) -> None:
    """Wait until some cell's pixels differ from ``before`` (or cells were added/removed)."""
    page.wait_for_function(
        f"([root, before]) => JSON.stringify(({CELL_PIXELS_JS})(root)) !== JSON.stringify(before)",
        arg=[compare.element_handle(), before],
        timeout=timeout_ms,
    )


def score_values(compare, name: str, col: int) -> list[float | None]:
    """The values of score ``name`` in column ``col``, rows in displayed order."""
    texts = compare.evaluate(
        """(root, [name, col]) => [...root.querySelectorAll("[data-role='row']")].map((row) =>
            row.querySelector(`[data-role='cell'][data-col='${col}'] [data-score='${name}']`)
                ?.textContent ?? "")""",
        [name, col],
    )
    return [None if text in ("", "–") else float(text) for text in texts]
