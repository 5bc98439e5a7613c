"""One self-contained HTML file showing a widget without Python: ``LrpWidget.save_html``.

The file holds the widget's front end (``_esm`` and ``_css``) and its synced state, inline: no
network, no CDN. A small loader imports the front end from a ``blob:`` URL and renders it with a
stand-in for the widget model that keeps the state in the page. That model says it has no
kernel (``lrpStandalone``), so the page is view only from the start (see
``js/src/shared/connection.ts``): what the front end draws by itself (colormap, opacity, colour
scale, sample, hover) works; what needs the kernel is disabled.

Binary values (``bytes``, ``memoryview``) of the state travel as ``{"$bytes": base64}`` and
reach the front end as ``DataView``s, as in Jupyter.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

__all__ = ["standalone_html", "write_standalone_html"]

#: synced traits left out of the embedded state: the front end itself travels separately
_SKIPPED = ("_esm", "_css")

_LOADER = """
const payload = JSON.parse(document.getElementById("lrp-payload").textContent);
const decode = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
const revive = (value) => {
  if (Array.isArray(value)) return value.map(revive);
  if (value === null || typeof value !== "object") return value;
  if (typeof value.$bytes === "string") return new DataView(decode(value.$bytes).buffer);
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, revive(v)]));
};
class StandaloneModel {
  lrpStandalone = true;
  #state = revive(payload.state);
  #handlers = new Map();
  get(key) { return this.#state[key]; }
  set(key, value) {
    if (this.#state[key] === value) return;
    this.#state[key] = value;
    for (const callback of [...(this.#handlers.get(`change:${key}`) ?? [])]) callback();
  }
  on(event, callback) {
    if (!this.#handlers.has(event)) this.#handlers.set(event, []);
    this.#handlers.get(event).push(callback);
  }
  off(event, callback) {
    const list = this.#handlers.get(event) ?? [];
    this.#handlers.set(event, callback ? list.filter((c) => c !== callback) : []);
  }
  save_changes() {}
  send() {}
}
const source = new TextDecoder().decode(decode(payload.esm));
const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
const widget = (await import(url)).default;
URL.revokeObjectURL(url);
const el = document.getElementById("lrp-widget");
const model = new StandaloneModel();
await widget.initialize?.({ model });
await widget.render({ model, el });
document.body.dataset.rendered = "true";
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ margin: 16px; font-family: system-ui, sans-serif; }}
.lrp-standalone-note {{ font-size: 12px; color: #555; margin: 0 0 8px; }}
{css}
</style>
</head>
<body>
<p class="lrp-standalone-note">{title}: saved from lrp-widgets. The relevance shown is the one
computed when the file was saved; colormap, opacity, colour scale and sample can be changed here,
changing rules needs the widget in a notebook with its Python kernel.</p>
<div id="lrp-widget"></div>
<script type="application/json" id="lrp-payload">{payload}</script>
<script type="module">{loader}</script>
</body>
</html>
"""


def _encode(value: Any) -> Any:
    """``value`` with every ``bytes``/``memoryview`` replaced by ``{"$bytes": base64}``."""
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dict):
        return {key: _encode(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(item) for item in value]
    return value


def standalone_html(state: dict[str, Any], esm: str, css: str, title: str) -> str:
    """The page (see the module doc) for a widget's synced ``state`` (``widget.get_state()``),
    front end ``esm``/``css`` and ``title``."""
    kept = {key: value for key, value in state.items() if key not in _SKIPPED}
    payload = {
        "state": _encode(kept),
        "esm": base64.b64encode(esm.encode("utf-8")).decode("ascii"),
    }
    # "</" cannot end the JSON script early once written as "<\\/" (the same string in JSON)
    text = json.dumps(payload, separators=(",", ":")).replace("</", "<\\/")
    return _PAGE.format(
        title=html.escape(title),
        css=css.replace("</", "<\\/"),
        payload=text,
        loader=_LOADER,
    )


def write_standalone_html(
    path: str | Path, state: dict[str, Any], esm: str, css: str, title: str
) -> Path:
    """Write :func:`standalone_html` to ``path`` (UTF-8); returns the path.

    Raises
    ------
    FileNotFoundError
        the folder of ``path`` does not exist.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(
            f"save_html(path): the folder {path.parent} does not exist; create it first"
        )
    path.write_text(standalone_html(state, esm, css, title), encoding="utf-8")
    return path
