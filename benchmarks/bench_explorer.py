"""Explorer responsiveness in the real page: JupyterLab in headless Chromium, demo model.

Run: ``.venv/bin/python benchmarks/bench_explorer.py [--repeats N]``

It starts an isolated JupyterLab server (the browser tests' harness, ``tests/browser``), runs
the quickstart notebook (8 demo images, EpsilonPlusFlat with the demo canonizers), selects
``features.0`` and gives it the Epsilon rule, then measures in the page (``performance.now()``):

- ``parameter``: one ε slider move (an ``input`` event) → the heatmap answering it is drawn:
  front-end debounce (25 ms) + comm message + backward pass in the kernel + binary transfer of
  the float32 relevance + drawing. Issue target: median ≤ 150 ms.
- ``colormap``: a colormap change (``change`` event) → the canvas is redrawn, synchronously in
  the event handler, no kernel message. Issue target: median ≤ 16 ms.

Prints the median (and min/max) of ``--repeats`` changes each; the server is stopped at the end.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "browser"))

from _explorer_page import wait_settled  # noqa: E402
from conftest import CHROMIUM, CHROMIUM_ARGS, JupyterUI, start_server, stop_server  # noqa: E402

# One slider move; resolves with the milliseconds until a heatmap for a newer request is drawn.
PARAMETER_JS = """async ([root, value]) => {
    const slider = root.querySelector("[data-param='epsilon']");
    const drawn = root.dataset.drawnRequest;
    const start = performance.now();
    slider.value = String(value);
    slider.dispatchEvent(new Event("input", { bubbles: true }));
    while (root.dataset.drawnRequest === drawn) {
        await new Promise((done) => requestAnimationFrame(done));
        if (performance.now() - start > 10000) throw new Error("no heatmap within 10 s");
    }
    return performance.now() - start;
}"""

# One colormap change; the redraw happens inside the change handler.
COLORMAP_JS = """([root, name]) => {
    const select = root.querySelector("[data-role='cmap-select']");
    const start = performance.now();
    select.value = name;
    select.dispatchEvent(new Event("change", { bubbles: true }));
    return performance.now() - start;
}"""


def summary(name: str, values: list[float], target: float) -> str:
    median = statistics.median(values)
    verdict = "ok" if median <= target else "OVER TARGET"
    return (
        f"{name:<10} median {median:7.1f} ms  (min {min(values):.1f}, max {max(values):.1f}, "
        f"n={len(values)})  target ≤ {target:g} ms: {verdict}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="changes measured per kind")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        server = start_server("lab", Path(tmp))
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
                )
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.set_default_timeout(120_000)
                page.goto(f"{server.url}/lab/tree/01_quickstart.ipynb")
                ui = JupyterUI(page)
                ui.wait_for_notebook()
                ui.run_all_cells()
                explorer = page.locator(".lrp-explorer")
                wait_settled(page, explorer)
                explorer.locator("[data-layer='features.0']").click()
                explorer.locator("[data-role='rule-select']").select_option("Epsilon")
                explorer.locator("[data-layer='features.0'][data-rule='Epsilon']").wait_for()
                wait_settled(page, explorer)
                root = explorer.element_handle()

                parameter = []
                for i in range(args.repeats + 2):
                    value = 60 + (i % 2) * 60  # alternate ε between 1e-6 and 1e-3
                    elapsed = page.evaluate(PARAMETER_JS, [root, value])
                    wait_settled(page, explorer)
                    if i >= 2:  # the first changes warm up caches
                        parameter.append(elapsed)

                names = ["bwr", "coldnhot", "hot", "seismic"]
                colormap = [
                    page.evaluate(COLORMAP_JS, [root, names[i % len(names)]])
                    for i in range(args.repeats + 2)
                ][2:]
                browser.close()
        finally:
            stop_server(server)

    print("Explorer in JupyterLab (headless Chromium), demo model, 8 images of 3×64×64:")
    print(summary("parameter", parameter, 150))
    print(summary("colormap", colormap, 16))


if __name__ == "__main__":
    main()
