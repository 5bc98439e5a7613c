"""Helpers for any widget's page in JupyterLab: screenshots kept as artifacts (and published to
the README's pictures on request), theme switching and a text contrast measure."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"


def publish(shot: Path) -> None:
    """Check ``shot`` was written; copy it to docs/images/ when LRP_UPDATE_SCREENSHOTS=1."""
    assert shot.stat().st_size > 0
    if os.environ.get("LRP_UPDATE_SCREENSHOTS") == "1":
        docs = REPO / "docs" / "images"
        docs.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, docs / shot.name)


# WCAG contrast ratio of an element's text against its (first opaque) background.
CONTRAST_JS = """(el) => {
    const parse = (text) => {  // "rgb(r, g, b)", "rgba(r, g, b, a)" or "color(srgb r g b / a)"
        const v = text.match(/-?[\\d.]+(?:e-?\\d+)?/g).map(Number);
        const scale = text.startsWith("color(") ? 255 : 1;
        return [v[0] * scale, v[1] * scale, v[2] * scale, v[3] ?? 1];
    };
    let node = el;
    let bg = parse(getComputedStyle(node).backgroundColor);
    while (bg[3] < 1 && node.parentElement) {
        node = node.parentElement;
        bg = parse(getComputedStyle(node).backgroundColor);
    }
    const fg = parse(getComputedStyle(el).color);
    const mixed = fg.slice(0, 3).map((v, i) => fg[3] * v + (1 - fg[3]) * bg[i]);
    const lum = (c) => {
        const [r, g, b] = c.map((v) => {
            const s = v / 255;
            return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
        });
        return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const [hi, lo] = [lum(mixed), lum(bg.slice(0, 3))].sort((a, b) => b - a);
    return (hi + 0.05) / (lo + 0.05);
}"""


def set_theme(page, theme: str, light: bool) -> None:
    """Pick ``theme`` in Settings → Theme and wait until JupyterLab reports it."""
    page.locator(".lm-MenuBar-itemLabel").get_by_text("Settings", exact=True).click()
    page.locator(".lm-Menu-itemLabel").get_by_text("Theme", exact=True).click()
    page.locator(".lm-Menu-itemLabel").get_by_text(theme, exact=True).click()
    page.wait_for_selector(f"body[data-jp-theme-light='{str(light).lower()}']", state="attached")
