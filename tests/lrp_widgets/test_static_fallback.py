"""What the widgets show without a kernel: the picture and summary in their display data, the
Explorer's figure, the answer to the page's ping and the standalone page of ``save_html``.

The figure is checked against the relevance read straight from the live explanation (channel
sum in float64, colour scale the 99th percentile of ``|map|`` by numpy's ``method="lower"``).
"""

from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
import pytest
from _compare_helpers import batch, small_model
from matplotlib.image import imread

from lrp_widgets import Compare, Explorer
from lrp_widgets._base import FALLBACK_DPI, FALLBACK_MAX_PIXELS

VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(params=["explorer", "compare"])
def widget(request):
    model, (inputs, _) = small_model(), batch()
    if request.param == "explorer":
        widget = Explorer(model, inputs, class_names=["a", "b", "c", "d"])
    else:
        widget = Compare(model, inputs, ["EpsilonPlusFlat", None])
    yield widget
    widget.close()


@pytest.fixture
def explorer():
    widget = Explorer(small_model(), batch()[0])
    yield widget
    widget.close()


def png_of(data: dict) -> np.ndarray:
    return imread(io.BytesIO(base64.b64decode(data["image/png"])), format="png")


def test_display_data_hold_the_view_a_picture_and_a_summary(widget):
    data, _ = widget._repr_mimebundle_()
    assert data[VIEW]["model_id"] == widget.model_id  # the live view is still offered first
    picture = png_of(data)
    width, height = widget.to_figure().get_size_inches() * FALLBACK_DPI
    assert picture.shape == (int(height), int(width), 4)  # matplotlib truncates
    assert max(picture.shape) <= FALLBACK_MAX_PIXELS
    assert picture[..., :3].std() > 0.05  # something is drawn, not a blank canvas
    summary = data["text/plain"]
    assert "\n" not in summary and "Sequential" in summary
    assert "kernel" in summary


def test_summaries_name_what_is_shown(widget):
    summary = widget.summary()
    if isinstance(widget, Explorer):
        classes = widget.heatmap["classes"]
        assert f"sample 0 as class {classes[0]} ({'abcd'[classes[0]]})" in summary
        assert "epsilon_plus_flat" in summary
    else:
        assert "3 rows × columns EpsilonPlusFlat, Gradient" in summary


def test_a_big_grid_is_drawn_at_a_lower_resolution():
    model, (inputs, _) = small_model(), batch()
    rows = inputs.repeat(4, 1, 1, 1)  # 12 rows: 2 in × 12 rows at 72 dpi would exceed the cap
    compare = Compare(model, rows, ["EpsilonPlusFlat", None])
    try:
        width, height = compare.to_figure().get_size_inches()
        picture = png_of(compare.fallback_data())
    finally:
        compare.close()
    assert height * FALLBACK_DPI > FALLBACK_MAX_PIXELS
    assert picture.shape[0] == FALLBACK_MAX_PIXELS
    assert picture.shape[1] == pytest.approx(width / height * FALLBACK_MAX_PIXELS, abs=1)


def test_picture_follows_the_shown_sample(explorer):
    first = png_of(explorer.fallback_data())
    explorer.sample = 1
    second = png_of(explorer.fallback_data())
    assert first.shape == second.shape and not np.array_equal(first, second)


def test_a_figure_that_fails_leaves_the_view_and_the_summary(widget, monkeypatch, caplog):
    def broken(**kwargs):
        raise RuntimeError("no figure today")

    monkeypatch.setattr(widget, "to_figure", broken)
    data, _ = widget._repr_mimebundle_()
    assert VIEW in data and data["text/plain"] == widget.summary()
    assert "image/png" not in data
    assert "no static picture" in caplog.text


@pytest.mark.parametrize("sample", [0, 2])
def test_explorer_figure_draws_the_channel_sum_with_a_symmetric_scale(explorer, sample):
    figure = explorer.to_figure(sample=sample)
    expected = explorer.relevance[sample].double().sum(dim=0).numpy()
    heatmap = figure.axes[1].images[0]
    np.testing.assert_allclose(heatmap.get_array(), expected, rtol=1e-12)
    s = np.percentile(np.abs(expected), 99, method="lower")
    assert heatmap.get_clim() == pytest.approx((-s, s), rel=1e-12)
    labels = [label.get_text() for label in figure.colorbars[0].ax.get_yticklabels()]
    assert labels == [f"-{s:.3g}", "0", f"+{s:.3g}"]
    shown = explorer.heatmap["classes"][sample]
    assert figure.axes[1].get_title() == f"relevance for class {shown}"
    figure_max = explorer.to_figure(sample=sample, scale_by="max").axes[1].images[0]
    assert figure_max.get_clim() == pytest.approx((-abs(expected).max(), abs(expected).max()))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"cmap": "rainbowish"}, "unknown colormap 'rainbowish'"),
        ({"sample": 3}, r"sample must be in \[0, 2\], got 3"),
        ({"scale_by": "median"}, "scale_by must be one of"),
    ],
)
def test_explorer_figure_rejects_bad_arguments(explorer, kwargs, match):
    with pytest.raises(ValueError, match=match):
        explorer.to_figure(**kwargs)


def test_the_ping_of_a_page_is_answered_with_a_pong(widget, monkeypatch):
    sent = []
    monkeypatch.setattr(widget, "send", lambda content, buffers=None: sent.append(content))
    before = widget.answered
    widget._on_message(widget, {"type": "ping"}, [])
    assert sent == [{"type": "pong"}]
    assert widget.status == "ready" and widget.error == "" and widget.answered == before


def payload_of(page: str) -> dict:
    found = re.search(r'<script type="application/json" id="lrp-payload">(.*?)</script>', page)
    assert found is not None
    return json.loads(found.group(1))


def test_save_html_writes_one_self_contained_page(widget, tmp_path):
    path = widget.save_html(tmp_path / "shared.html")
    page = path.read_text(encoding="utf-8")
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", page)  # nothing fetched
    payload = payload_of(page)
    esm = base64.b64decode(payload["esm"]).decode("utf-8")
    assert esm == widget._esm
    assert widget._css.strip()[:40] in page
    state = payload["state"]
    assert "_esm" not in state and "_css" not in state
    if isinstance(widget, Explorer):
        message = state["heatmap"]
        data = base64.b64decode(message["data"]["$bytes"])
        relevance = np.frombuffer(data, dtype=message["dtype"]).reshape(message["shape"])
        np.testing.assert_array_equal(relevance, widget.relevance.numpy())
    else:
        assert [c["name"] for c in state["columns"]] == widget.column_names


def test_save_html_into_a_missing_folder_says_so(widget, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist; create it first"):
        widget.save_html(tmp_path / "nowhere" / "page.html")
    assert not (tmp_path / "nowhere").exists()
