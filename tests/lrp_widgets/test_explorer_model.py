"""Explorer widget model, tested in Python without a browser: traits, commands and bad input.

The front end changes traits the way ipywidgets applies any message from the page
(``widget.set_state({...})``) and sends commands as custom messages, which these tests deliver
with ``widget._on_message(widget, content, [])``, the handler ipywidgets calls.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import traitlets
from torch import nn

from lrp_core.cmap import CMAPS
from lrp_core.core import Composite
from lrp_widgets import Explorer, _static
from lrp_widgets._static import BundleMissingError
from lrp_widgets.explorer import UnknownLayerError


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, kernel_size=1)  # 4*4*1*1 + 4 = 20 parameters
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


def small_model() -> nn.Module:
    """Conv2d(3, 4, 3): 4*3*3*3 + 4 = 112 params; Block: 20; Linear(4, 2): 4*2 + 2 = 10."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), Block(), nn.Flatten(), nn.Linear(4, 2))


EXPECTED_LAYERS = [  # inputs [2, 3, 3, 3]: the 3x3 convolution leaves 1x1 pixels
    {"name": "0", "parent": "", "type": "Conv2d", "params": 112, "leaf": True},
    {"name": "1", "parent": "", "type": "Block", "params": 20, "leaf": False},
    {"name": "1.conv", "parent": "1", "type": "Conv2d", "params": 20, "leaf": True},
    {"name": "1.act", "parent": "1", "type": "ReLU", "params": 0, "leaf": True},
    {"name": "2", "parent": "", "type": "Flatten", "params": 0, "leaf": True},
    {"name": "3", "parent": "", "type": "Linear", "params": 10, "leaf": True},
]
OUTPUT_SHAPES = [[2, 4, 1, 1], [2, 4, 1, 1], [2, 4, 1, 1], [2, 4, 1, 1], [2, 4], [2, 2]]


def decode(message: dict) -> np.ndarray:
    """The array of a binary trait value, from its bytes, dtype and shape."""
    return np.frombuffer(message["data"], dtype=message["dtype"]).reshape(message["shape"])


@pytest.fixture
def inputs() -> torch.Tensor:
    return torch.randn(2, 3, 3, 3, generator=torch.Generator().manual_seed(1))


@pytest.fixture
def explorer(inputs: torch.Tensor) -> Explorer:
    return Explorer(small_model(), inputs)


def linear_explorer(composite=None, **kwargs) -> tuple[Explorer, nn.Linear, torch.Tensor]:
    torch.manual_seed(2)
    layer = nn.Linear(4, 3)
    x = torch.randn(2, 4, generator=torch.Generator().manual_seed(3))
    return Explorer(nn.Sequential(layer), x, composite=composite, **kwargs), layer, x


def test_layer_tree_traits(explorer: Explorer):
    # Hand-counted reference (see small_model); order is named_modules() pre-order.
    rows = [{k: v for k, v in row.items() if k != "output_shape"} for row in explorer.layers]
    assert rows == EXPECTED_LAYERS
    assert [row["output_shape"] for row in explorer.layers] == OUTPUT_SHAPES
    assert explorer.layer_names == [layer["name"] for layer in EXPECTED_LAYERS]
    assert explorer.model_name == "Sequential"
    assert explorer.total_params == 112 + 20 + 10
    assert explorer.selected == []
    assert explorer.status == "ready" and explorer.error == ""


def test_every_leaf_has_its_effective_rule(explorer: Explorer):
    # EpsilonPlusFlat: Flat on the first layer, ZPlus on other convolutions, Epsilon on dense
    # layers, Pass on activations; Flatten has no rule: its plain gradient is intended, so it is
    # no fallback (no warning badge).
    leaves = [row["name"] for row in EXPECTED_LAYERS if row["leaf"]]
    assert sorted(explorer.rules) == sorted(leaves)
    assert {name: state["rule"] for name, state in explorer.rules.items()} == {
        "0": "Flat",
        "1.conv": "ZPlus",
        "1.act": "Pass",
        "2": "Gradient",
        "3": "Epsilon",
    }
    assert explorer.rules["2"]["origin"] == "gradient"
    assert explorer.rules["3"]["origin"] == "composite"


def test_state_sent_to_the_front_end(explorer: Explorer):
    state = explorer.get_state()
    for key in ("layers", "rules", "catalog", "palettes", "images", "heatmap", "status"):
        assert key in state
    assert ".lrp-explorer" in state["_css"]
    # Binary data travels as bytes (sent as buffers), with dtype and shape beside it.
    assert isinstance(explorer.heatmap["data"], bytes)
    assert explorer.heatmap["dtype"] == "float32" and explorer.heatmap["shape"] == [2, 3, 3, 3]
    assert explorer.images["dtype"] == "uint8" and explorer.images["shape"] == [2, 3, 3, 3]
    _, buffer_paths, buffers = _static_buffers(explorer)
    assert ["heatmap", "data"] in buffer_paths and len(buffers) >= 2


def _static_buffers(widget):
    from ipywidgets.widgets.widget import _remove_buffers

    return _remove_buffers(widget.get_state())


def test_catalog_lists_every_rule_with_defaults(inputs: torch.Tensor):
    from lrp_core.live import RULES, register_rule, unregister_rule
    from lrp_core.rules import Epsilon

    class Halved(Epsilon):
        """A custom rule: registered rules appear in the picker."""

    register_rule("Halved", Halved)
    try:
        explorer = Explorer(small_model(), inputs)
    finally:
        unregister_rule("Halved")
    catalog = explorer.catalog
    assert sorted(catalog) == sorted(["Gradient", "Halved", *RULES])
    assert catalog["Epsilon"]["params"] == {"epsilon": 1e-6, "zero_params": None}
    assert catalog["AlphaBeta"]["params"]["alpha"] == 2.0
    # ZBox bounds default to the batch's value range.
    zbox = catalog["ZBox"]["params"]
    assert (zbox["low"], zbox["high"]) == (float(inputs.min()), float(inputs.max()))


def test_palettes_are_the_engine_colormaps(explorer: Explorer):
    assert sorted(explorer.palettes) == sorted(CMAPS)
    for name, data in explorer.palettes.items():
        assert data == CMAPS[name].palette().tobytes() and len(data) == 256 * 3


def test_thumbnails_scale_the_batch_to_bytes(explorer: Explorer, inputs: torch.Tensor):
    # pixel = round(255 * (x - min) / (max - min)), channels last
    expected = ((inputs - inputs.min()) / (inputs.max() - inputs.min()) * 255).round()
    assert np.array_equal(decode(explorer.images), expected.permute(0, 2, 3, 1).numpy())


def test_plain_gradient_heatmap_matches_autograd():
    # Without a composite every layer is a plain gradient: R = d f_c / d x, c the prediction.
    explorer, layer, x = linear_explorer(composite=None)
    c = (x @ layer.weight.T + layer.bias).argmax(dim=1)
    expected = layer.weight.detach()[c]  # d(W x + b)_c / dx = W[c]
    heatmap = decode(explorer.heatmap).reshape(2, 4)
    assert np.allclose(heatmap, expected.numpy(), atol=1e-6)
    assert explorer.heatmap["classes"] == c.tolist()
    assert torch.allclose(explorer.relevance, expected, atol=1e-6)


def test_assign_from_python_recomputes_with_the_rule():
    # Epsilon on a dense layer, target class t (seed one-hot):
    #   R_i = x_i * W[t, i] / (z_t + eps * sign(z_t)),  z = W x + b   (float64 reference)
    explorer, layer, x = linear_explorer(composite=None, target=1)
    explorer.assign("Epsilon", name="0", epsilon=0.5)
    w, b = layer.weight.detach().double(), layer.bias.detach().double()
    z = x.double() @ w.T + b
    zt = z[:, 1:2]
    expected = x.double() * w[1] / (zt + 0.5 * torch.where(zt >= 0, 1.0, -1.0))
    assert np.allclose(decode(explorer.heatmap).reshape(2, 4), expected.numpy(), atol=1e-5)
    assert explorer.rules["0"] == {
        "rule": "Epsilon",
        "params": {"epsilon": 0.5, "zero_params": None},
        "origin": "override",
    }
    assert explorer.live.forward_count == 1  # backward-only re-runs


def test_commands_from_the_page_match_python_commands(inputs: torch.Tensor):
    by_python, by_page = Explorer(small_model(), inputs), Explorer(small_model(), inputs)
    by_python.assign("Gamma", name=["1.conv"], gamma=0.5)
    count = by_page.compute_count
    message = {"type": "assign", "names": ["1.conv"], "rule": "Gamma", "request": 7}
    by_page._on_message(by_page, {**message, "params": {"gamma": 0.5}}, [])
    assert by_page.rules == by_python.rules
    assert by_page.heatmap["data"] == by_python.heatmap["data"]
    assert by_page.heatmap["request"] == 7 and by_page.answered == 7
    assert by_page.compute_count == count + 1
    assert by_page.heatmap["generation"] > 0


def test_invalid_value_shows_an_error_and_keeps_the_last_heatmap(explorer: Explorer):
    explorer.assign("Epsilon", name="3", epsilon=0.1)
    before = (explorer.heatmap, explorer.rules)
    message = {"type": "assign", "names": ["3"], "rule": "Epsilon", "request": 3}
    explorer._on_message(explorer, {**message, "params": {"epsilon": -1.0}}, [])
    assert explorer.status == "error" and "epsilon" in explorer.error
    assert explorer.answered == 3  # the page may send its next request
    assert (explorer.heatmap, explorer.rules) == before
    # The widget keeps working.
    explorer._on_message(explorer, {**message, "params": {"epsilon": 0.2}, "request": 4}, [])
    assert explorer.status == "ready" and explorer.error == ""
    assert explorer.rules["3"]["params"]["epsilon"] == 0.2


def test_invalid_value_from_python_raises_and_shows_inline(explorer: Explorer):
    with pytest.raises(ValueError, match="gamma"):
        explorer.assign("Gamma", name="1.conv", gamma=-1.0)
    assert explorer.status == "error" and "gamma" in explorer.error
    assert explorer.rules["1.conv"]["rule"] == "ZPlus"


def test_unknown_rule_from_the_page_is_reported(explorer: Explorer):
    explorer._on_message(explorer, {"type": "assign", "names": ["3"], "rule": "Nope"}, [])
    assert explorer.status == "error" and "Nope" in explorer.error


def test_set_params_and_reset(explorer: Explorer):
    explorer.set_params("3", epsilon=0.25)
    assert explorer.rules["3"]["params"]["epsilon"] == 0.25
    assert explorer.rules["3"]["origin"] == "override"
    explorer._on_message(explorer, {"type": "reset", "names": ["3"], "request": 1}, [])
    assert explorer.rules["3"] == {
        "rule": "Epsilon",
        "params": {"epsilon": 1e-6, "zero_params": None},
        "origin": "composite",
    }
    explorer.assign("Gamma", name=["0", "1.conv"])
    explorer.reset()
    assert all(state["origin"] != "override" for state in explorer.rules.values())


def test_bulk_assign_by_type(explorer: Explorer):
    explorer.assign("Gamma", type=nn.Conv2d, gamma=0.1)
    assert explorer.rules["0"]["rule"] == explorer.rules["1.conv"]["rule"] == "Gamma"
    explorer._on_message(
        explorer,
        {"type": "assign", "names": ["0"], "rule": "Epsilon", "params": {}, "scope_type": "Conv2d"},
        [],
    )
    assert explorer.rules["0"]["rule"] == explorer.rules["1.conv"]["rule"] == "Epsilon"
    # Within a subtree: only block 1's convolution.
    message = {"type": "assign", "names": ["1.conv"], "rule": "Gamma", "params": {}}
    explorer._on_message(explorer, {**message, "scope_type": "Conv2d", "scope_within": "1"}, [])
    assert explorer.rules["1.conv"]["rule"] == "Gamma" and explorer.rules["0"]["rule"] == "Epsilon"
    explorer._on_message(explorer, {**message, "scope_type": "Conv2d", "scope_within": "9"}, [])
    assert explorer.status == "error" and "'9'" in explorer.error


def test_assign_to_a_subtree(explorer: Explorer):
    explorer.assign("Epsilon", name="1", epsilon=0.3)
    assert explorer.rules["1.conv"]["params"]["epsilon"] == 0.3
    assert explorer.rules["0"]["rule"] == "Flat"


def test_composite_presets_keep_or_clear_overrides(explorer: Explorer):
    explorer.assign("Gamma", name="1.conv")
    explorer.set_composite("epsilon_alpha2_beta1", keep_overrides=True)
    assert explorer.composite == "epsilon_alpha2_beta1"
    assert explorer.rules["1.conv"]["rule"] == "Gamma"
    assert explorer.rules["0"]["rule"] == "AlphaBeta"
    message = {"type": "composite", "name": "EpsilonPlus", "keep_overrides": False}
    explorer._on_message(explorer, message, [])
    assert explorer.composite == "epsilon_plus" and explorer.rules["1.conv"]["rule"] == "ZPlus"
    with pytest.raises(ValueError, match="unknown composite 'Nope'"):
        explorer.set_composite("Nope")


def test_target_recomputes_and_is_validated(explorer: Explorer):
    explorer.target = 1
    assert explorer.heatmap["classes"] == [1, 1]
    explorer.set_state({"target": 0})
    assert explorer.heatmap["classes"] == [0, 0]
    with pytest.raises(traitlets.TraitError, match="out of range"):
        explorer.target = 2
    explorer.target = None
    predicted = explorer.live.output.argmax(dim=1).tolist()
    assert explorer.heatmap["classes"] == predicted


def test_predictions_are_top_classes_with_probabilities(explorer: Explorer):
    probabilities = explorer.live.output.softmax(dim=1)
    for row, p in zip(explorer.predictions, probabilities, strict=True):
        assert [c for c, _ in row] == p.argsort(descending=True).tolist()
        assert np.allclose([v for _, v in row], p.sort(descending=True).values.tolist())


def test_config_code_and_composite_for_scripts(explorer: Explorer, inputs: torch.Tensor):
    explorer.assign("Gamma", name="1.conv", gamma=0.75)
    config = json.loads(explorer.config)
    assert config["overrides"][0]["rule"] == "Gamma"
    assert "Gamma(gamma=0.75" in explorer.to_code()
    assert isinstance(explorer.composite_for_scripts, Composite)
    other = Explorer(small_model(), inputs)
    other.config = explorer.config
    assert other.rules == explorer.rules and other.heatmap["data"] == explorer.heatmap["data"]
    with pytest.raises(ValueError):
        other.config = '{"format": "lrp_core.live", "version": 1, "overrides": 3}'
    assert other.rules == explorer.rules


def test_health_lists_every_layer(explorer: Explorer):
    names = [entry["name"] for entry in explorer.health if entry["module"]]
    assert sorted(names) == sorted(explorer.rules)
    for entry in explorer.health:
        assert len(entry["entering"]) == len(entry["leaving"]) == 2
        assert entry["violation"] in ("", "created", "lost", "non-finite")


def test_health_names_relevance_created_outside_modules():
    # the demo model's residual '+' is written in forward: without the residual canonizer both
    # branches receive the full relevance (input total 2x the seed); with it, nothing is left over
    from lrp_widgets.demo import demo_canonizers, load_model, make_batch

    images = make_batch(2, seed=0)[0]
    for canonizers, expected in (([], ["created"]), (demo_canonizers(), [])):
        explorer = Explorer(load_model(), images, canonizers=canonizers)
        try:
            outside = [entry for entry in explorer.health if not entry["module"]]
            assert [entry["violation"] for entry in outside] == expected
            assert all(entry["module"] for entry in explorer.health[: len(explorer.rules)])
            if outside:
                seed_total, input_total = outside[0]["entering"], outside[0]["leaving"]
                assert seed_total == pytest.approx([1.0, 1.0])
                assert min(input_total) > 1.5  # the copy, minus what biases absorbed
        finally:
            explorer.close()


def test_layer_map_of_the_focus_layer():
    # Plain gradient, one dense layer: the relevance at the model output is the seed, the
    # one-hot of each sample's predicted class c, so the map is one-hot and c the top channel.
    explorer, layer, x = linear_explorer(composite=None)
    assert explorer.layer_map == {}
    explorer.set_state({"focus_layer": "0"})
    c = (x @ layer.weight.T + layer.bias).argmax(dim=1)
    expected = torch.nn.functional.one_hot(c, 3).float().reshape(2, 1, 1, 3)
    assert explorer.layer_map["name"] == "0" and explorer.layer_map["shape"] == [2, 1, 1, 3]
    assert np.array_equal(decode(explorer.layer_map), expected.numpy())
    assert [top[0] for top in explorer.layer_map["top_channels"]] == [[int(k), 1.0] for k in c]
    explorer.focus_layer = ""
    assert explorer.layer_map == {}


def test_layer_map_sums_channels_of_a_convolution(explorer: Explorer):
    # Map = sum over channels (dim 1) of the relevance tensor kept for the layer's output.
    explorer.focus_layer = "1.conv"
    kept = explorer.live.explain(explorer.target, keep_tensors=["1.conv"])
    expected = kept.records["1.conv"].relevance_out.sum(dim=1, keepdim=True)
    assert explorer.layer_map["shape"] == [2, 1, 1, 1]
    assert np.allclose(decode(explorer.layer_map), expected.numpy(), atol=1e-7)
    with pytest.raises(traitlets.TraitError, match="has children"):
        explorer.focus_layer = "1"
    with pytest.raises(UnknownLayerError):
        explorer.focus_layer = "nope"


def test_select_from_python_and_the_page(explorer: Explorer):
    explorer.select("1.conv")
    assert explorer.selected == ["1.conv"]
    explorer.select(["3", "0", "3"])  # order kept, duplicates dropped
    assert explorer.selected == ["3", "0"]
    explorer.set_state({"selected": ["1.act", "2"]})
    assert explorer.selected == ["1.act", "2"]
    explorer.select([])
    assert explorer.selected == []


def test_assign_defaults_to_the_selection(explorer: Explorer):
    explorer.select(["0", "1.conv"])
    explorer.assign("Epsilon", epsilon=0.01)
    assert explorer.rules["0"]["rule"] == explorer.rules["1.conv"]["rule"] == "Epsilon"


def test_unknown_layer_names_are_rejected(explorer: Explorer):
    explorer.select("0")
    with pytest.raises(ValueError, match=r"'1\.cnv' \(did you mean '1\.conv'"):
        explorer.select(["3", "1.cnv"])
    with pytest.raises(UnknownLayerError):
        explorer.assign("Gamma", name="nope")
    with pytest.raises(traitlets.TraitError):
        explorer.set_state({"selected": [""]})
    assert explorer.selected == ["0"]
    with pytest.raises(TypeError, match="must be strings"):
        explorer.select([0])


def test_model_is_restored_on_close(inputs: torch.Tensor):
    model = small_model()
    before = {key: value.clone() for key, value in model.state_dict().items()}
    explorer = Explorer(model, inputs)
    explorer.assign("Gamma", name="0")
    explorer.close()
    assert model.training  # eval mode only while the widget lives
    after = model.state_dict()
    assert all(torch.equal(before[key], after[key]) for key in before)
    assert not any(m._forward_hooks or m._backward_hooks for m in model.modules())


@pytest.mark.parametrize("model", [None, "resnet", torch.zeros(3), lambda x: x])
def test_model_must_be_a_module(model, inputs):
    with pytest.raises(TypeError, match=r"needs a torch\.nn\.Module"):
        Explorer(model, inputs)


@pytest.mark.parametrize(
    ("inputs", "error", "match"),
    [
        ([[1.0, 2.0]], TypeError, "must be a torch.Tensor"),
        (torch.tensor(1.0), ValueError, "non-empty batch"),
        (torch.zeros(0, 3, 3, 3), ValueError, "non-empty batch"),
    ],
)
def test_bad_inputs(inputs, error, match):
    with pytest.raises(error, match=match):
        Explorer(small_model(), inputs)


def test_missing_bundle_says_how_to_build(monkeypatch, tmp_path, inputs):
    monkeypatch.setattr(_static, "STATIC_DIR", tmp_path / "static")
    with pytest.raises(BundleMissingError, match=r"npm run build") as info:
        Explorer(small_model(), inputs)
    assert "pip install -e" in str(info.value)
