"""Explorer widget model, tested in Python without a browser: traits, commands and bad input.

The front end changes ``selected`` the way ipywidgets applies any message from the page:
``widget.set_state({...})``; these tests do the same.
"""

from __future__ import annotations

import pytest
import torch
import traitlets
from torch import nn

from lrp_widgets import Explorer, _static
from lrp_widgets._static import BundleMissingError
from lrp_widgets.explorer import UnknownLayerError


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, kernel_size=1)  # 4*4*1*1 + 4 = 20 parameters
        self.act = nn.ReLU()


def small_model() -> nn.Module:
    """Conv2d(3, 4, 3): 4*3*3*3 + 4 = 112 params; Block: 20; Linear(4, 2): 4*2 + 2 = 10."""
    return nn.Sequential(nn.Conv2d(3, 4, 3), Block(), nn.Flatten(), nn.Linear(4, 2))


EXPECTED_LAYERS = [
    {"name": "0", "parent": "", "type": "Conv2d", "params": 112},
    {"name": "1", "parent": "", "type": "Block", "params": 20},
    {"name": "1.conv", "parent": "1", "type": "Conv2d", "params": 20},
    {"name": "1.act", "parent": "1", "type": "ReLU", "params": 0},
    {"name": "2", "parent": "", "type": "Flatten", "params": 0},
    {"name": "3", "parent": "", "type": "Linear", "params": 10},
]


@pytest.fixture
def explorer() -> Explorer:
    return Explorer(small_model(), torch.zeros(2, 3, 3, 3))


def test_layer_tree_traits(explorer: Explorer):
    # Hand-counted reference (see small_model); order is named_modules() pre-order.
    assert explorer.layers == EXPECTED_LAYERS
    assert explorer.layer_names == [layer["name"] for layer in EXPECTED_LAYERS]
    assert explorer.model_name == "Sequential"
    assert explorer.total_params == 112 + 20 + 10
    assert explorer.selected == []
    assert explorer.status == "ready" and explorer.error == ""


def test_state_sent_to_the_front_end(explorer: Explorer):
    state = explorer.get_state()
    for key in ("layers", "selected", "status", "model_name", "total_params"):
        assert key in state
    assert "export default" in state["_esm"] or "export{" in state["_esm"].replace(" ", "")
    assert ".lrp-explorer" in state["_css"]


def test_shared_module_is_listed_once_like_named_modules():
    shared = nn.Linear(2, 2)  # 2*2 + 2 = 6 parameters, counted once in the total
    model = nn.Sequential(shared, nn.ReLU(), shared)
    explorer = Explorer(model)
    assert explorer.layer_names == [name for name, _ in model.named_modules() if name]
    assert explorer.layer_names == ["0", "1"]
    assert explorer.total_params == 6


def test_lazy_parameters_count_zero():
    explorer = Explorer(nn.Sequential(nn.LazyLinear(3), nn.Linear(3, 1)))
    assert [layer["params"] for layer in explorer.layers] == [0, 3 * 1 + 1]


def test_model_and_inputs_are_kept_unchanged():
    model = small_model()
    before = {key: value.clone() for key, value in model.state_dict().items()}
    inputs = torch.randn(2, 3, 3, 3)
    explorer = Explorer(model, inputs)
    assert explorer.model is model and explorer.inputs is inputs
    assert model.training  # the Explorer does not switch modes
    after = model.state_dict()
    assert all(torch.equal(before[key], after[key]) for key in before)
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def test_select_from_python(explorer: Explorer):
    explorer.select("1.conv")
    assert explorer.selected == ["1.conv"]
    explorer.select(["3", "0", "3"])  # order kept, duplicates dropped
    assert explorer.selected == ["3", "0"]
    explorer.select(name for name in ("1",))
    assert explorer.selected == ["1"]
    explorer.select([])
    assert explorer.selected == []


def test_select_from_the_front_end(explorer: Explorer):
    seen = []
    explorer.observe(lambda change: seen.append(change["new"]), names="selected")
    explorer.set_state({"selected": ["1.act", "2"]})
    assert explorer.selected == ["1.act", "2"]
    assert seen == [["1.act", "2"]]


def test_select_unknown_name_raises_and_keeps_selection(explorer: Explorer):
    explorer.select("0")
    with pytest.raises(ValueError, match=r"'1\.cnv' \(did you mean '1\.conv'") as info:
        explorer.select(["3", "1.cnv"])
    assert "explorer.layer_names" in str(info.value)
    assert explorer.selected == ["0"]
    # The same check guards the trait itself, whoever sets it (a traitlets error too).
    with pytest.raises(UnknownLayerError):
        explorer.selected = ["nope"]
    with pytest.raises(traitlets.TraitError):
        explorer.set_state({"selected": [""]})  # the root is the header, not a row
    assert explorer.selected == ["0"]


def test_select_non_string_raises_type_error(explorer: Explorer):
    with pytest.raises(TypeError, match="must be strings"):
        explorer.select([0])
    with pytest.raises(TypeError, match="must be strings"):
        explorer.select(["0", None])
    assert explorer.selected == []


def test_status_only_takes_known_values(explorer: Explorer):
    with pytest.raises(traitlets.TraitError):
        explorer.status = "busy"


def test_read_only_traits(explorer: Explorer):
    with pytest.raises(traitlets.TraitError):
        explorer.layers = []


@pytest.mark.parametrize("model", [None, "resnet", torch.zeros(3), lambda x: x])
def test_model_must_be_a_module(model):
    with pytest.raises(TypeError, match=r"needs a torch\.nn\.Module"):
        Explorer(model)


@pytest.mark.parametrize(
    ("inputs", "error", "match"),
    [
        ([[1.0, 2.0]], TypeError, "must be a torch.Tensor"),
        (torch.tensor(1.0), ValueError, "non-empty batch"),
        (torch.zeros(0, 3, 8, 8), ValueError, "non-empty batch"),
    ],
)
def test_bad_inputs(inputs, error, match):
    with pytest.raises(error, match=match):
        Explorer(small_model(), inputs)


def test_missing_bundle_says_how_to_build(monkeypatch, tmp_path):
    monkeypatch.setattr(_static, "STATIC_DIR", tmp_path / "static")
    with pytest.raises(BundleMissingError, match=r"npm run build") as info:
        Explorer(small_model())
    assert isinstance(info.value, RuntimeError)
    assert "pip install -e" in str(info.value)
