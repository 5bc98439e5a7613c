"""Compare widget model, tested in Python without a browser: columns, traits, commands, errors.

Reference: every column's relevance equals the engine alone (``lrp_core.attribution.Gradient``
with that column's composite on a fresh model, one-hot seed of the explained class), computed
in ``_compare_helpers.engine_relevance``. Page commands are delivered with
``widget._on_message(widget, content, [])``, the handler ipywidgets calls.
"""

from __future__ import annotations

import copy
import json
import re

import numpy as np
import pytest
import torch
from _compare_helpers import CLASSES, batch, decode, engine_relevance, small_model

from lrp_core.composites import (
    EpsilonAlpha2Beta1Flat,
    EpsilonGammaBox,
    EpsilonPlus,
    EpsilonPlusFlat,
)
from lrp_core.live import ConfigError
from lrp_widgets import Compare, Explorer
from lrp_widgets.compare import ColumnError


@pytest.fixture
def data() -> tuple[torch.Tensor, torch.Tensor]:
    return batch()


@pytest.fixture
def grid(data) -> Compare:
    inputs, masks = data
    widget = Compare(small_model(), inputs, masks=masks)
    yield widget
    widget.close()


def box(inputs: torch.Tensor, **params) -> EpsilonGammaBox:
    return EpsilonGammaBox(low=float(inputs.min()), high=float(inputs.max()), **params)


def send(widget: Compare, **content) -> None:
    widget._on_message(widget, content, [])


def spy_explain(widget: Compare) -> list:
    """Record the assignment of every backward pass the live explanation runs."""
    calls = []
    explain = widget.live.explain

    def recording(*args, **kwargs):
        calls.append(kwargs.get("assignment"))
        return explain(*args, **kwargs)

    widget.live.explain = recording
    return calls


def test_default_columns_match_the_engine(grid: Compare, data):
    inputs, _ = data
    assert grid.column_names == [
        "EpsilonPlusFlat",
        "EpsilonGammaBox",
        "EpsilonAlpha2Beta1Flat",
        "Gradient",
    ]
    predicted = small_model()(inputs).argmax(1).tolist()
    assert grid.classes == predicted
    composites = [EpsilonPlusFlat(), box(inputs), EpsilonAlpha2Beta1Flat(), None]
    for name, composite in zip(grid.column_names, composites, strict=True):
        expected = engine_relevance(inputs, composite, predicted)
        torch.testing.assert_close(grid.relevance(name), expected, rtol=1e-5, atol=1e-8)
    # one forward pass for all columns, one backward pass per column
    assert grid.live.forward_count == 1
    assert grid.compute_count == 4
    assert grid.live._cache.size >= len(grid.column_names)


def test_synced_traits(grid: Compare, data):
    inputs, masks = data
    ids = [column["id"] for column in grid.columns]
    assert ids == [0, 1, 2, 3]
    assert set(grid.heatmaps) == {str(i) for i in ids}
    for column in grid.columns:
        message = grid.heatmaps[str(column["id"])]
        assert message["dtype"] == "float32" and message["shape"] == list(inputs.shape)
        np.testing.assert_array_equal(decode(message), grid.relevance(column["name"]).numpy())
    assert grid.columns[0]["composite"] == "epsilon_plus_flat"
    assert grid.columns[0]["params"] == {"epsilon": 1e-6, "stabilizer": 1e-6}
    assert grid.columns[1]["params"]["low"] == float(inputs.min())  # box bounds: batch range
    assert grid.columns[3]["composite"] == "" and grid.columns[3]["params"] == {}
    assert json.loads(grid.columns[0]["config"])["composite"]["name"] == "epsilon_plus_flat"
    assert grid.presets[-1] == "Gradient" and "epsilon_gamma_box" in grid.presets
    assert decode(grid.images).shape == (3, 8, 8, 3)
    np.testing.assert_array_equal(decode(grid.masks), masks.numpy().astype(np.uint8))
    probabilities = small_model()(inputs).detach().softmax(1)
    for row, (cls, p) in enumerate(grid.predictions):
        assert cls == grid.classes[row]
        assert p == pytest.approx(float(probabilities[row].max()), rel=1e-6)
    assert grid.class_names == [str(i) for i in range(CLASSES)]
    assert set(grid.score_info) == {
        "conservation_error",
        "sparseness",
        "relevance_mass",
        "pointing_game",
        "faithfulness",
        "class_sensitivity",
    }
    assert (grid.normalization, grid.reference, grid.cmap, grid.status) == (
        "grid",
        -1,
        "bwr",
        "ready",
    )


def test_changing_one_column_reruns_only_that_column(grid: Compare, data):
    inputs, _ = data
    before = {key: dict(value) for key, value in grid.heatmaps.items()}
    calls = spy_explain(grid)
    target = next(c for c in grid._session.columns if c.name == "EpsilonGammaBox")
    grid.set_composite_params("EpsilonGammaBox", gamma=0.5)
    assert calls == [target.assignment]  # exactly one backward, with that column's rules
    assert grid.live.forward_count == 1
    assert grid.compute_count == 5
    changed = [k for k in before if grid.heatmaps[k]["generation"] != before[k]["generation"]]
    assert changed == ["1"]
    for key in ("0", "2", "3"):
        assert grid.heatmaps[key]["data"] == before[key]["data"]
    expected = engine_relevance(inputs, box(inputs, gamma=0.5), grid.classes)
    torch.testing.assert_close(grid.relevance("EpsilonGammaBox"), expected, rtol=1e-5, atol=1e-8)
    assert grid.columns[1]["params"]["gamma"] == 0.5


def test_layer_override_of_one_column(grid: Compare, data):
    inputs, _ = data
    calls = spy_explain(grid)
    grid.set_params("6", column="EpsilonPlusFlat", epsilon=0.5)  # the Linear layer's Epsilon
    grid.assign("Gamma", name="2", column="EpsilonPlusFlat", gamma=1.0)
    assert len(calls) == 2 and grid.compute_count == 6
    assert grid.columns[0]["overrides"] == [
        {"layer": "6", "rule": "Epsilon", "params": {"epsilon": 0.5, "zero_params": None}},
        {"layer": "2", "rule": "Gamma", "params": {"gamma": 1.0, "stabilizer": 1e-6,
                                                   "zero_params": None}},
    ]  # fmt: skip
    config = grid.column_config("EpsilonPlusFlat")
    other = Compare(small_model(), inputs, {"copy": config})
    torch.testing.assert_close(other.relevance("copy"), grid.relevance("EpsilonPlusFlat"))
    other.close()


def test_config_forms_and_names(data):
    inputs, _ = data
    model = small_model()
    explorer = Explorer(small_model(), inputs, "epsilon_plus")  # its own model copy
    explorer.assign("Gamma", name="0", gamma=0.5)
    configs = {
        "preset": "epsilon_plus_flat",
        "instance": EpsilonPlus(epsilon=0.01),
        "json": explorer.config,
        "dict": json.loads(explorer.config),
        "explorer": explorer,
        "none": None,
    }
    grid = Compare(model, inputs, configs)
    assert grid.column_names == list(configs)
    torch.testing.assert_close(grid.relevance("explorer"), explorer.relevance)
    torch.testing.assert_close(grid.relevance("json"), explorer.relevance)
    torch.testing.assert_close(grid.relevance("dict"), explorer.relevance)
    expected = engine_relevance(inputs, EpsilonPlus(epsilon=0.01), grid.classes)
    torch.testing.assert_close(grid.relevance("instance"), expected, rtol=1e-5, atol=1e-8)
    assert grid.columns[1]["params"]["epsilon"] == 0.01  # a registered instance stays editable
    explorer.close()
    assert grid.add_column("EpsilonPlusFlat") == "EpsilonPlusFlat"
    assert grid.add_column("EpsilonPlusFlat") == "EpsilonPlusFlat (2)"
    assert grid.add_column("epsilon_plus_flat", index=0) == "EpsilonPlusFlat (3)"
    assert grid.column_names[0] == "EpsilonPlusFlat (3)"
    assert grid.add_column(None, name="preset") == "preset (2)"
    assert [c["id"] for c in grid.columns] == [8, 0, 1, 2, 3, 4, 5, 6, 7, 9]
    assert grid.live.forward_count == 1
    grid.close()


def test_box_bounds_default_to_the_batch_range(grid: Compare, data):
    inputs, _ = data
    config = {"format": "lrp_core.live", "version": 1, "overrides": [],
              "composite": {"name": "epsilon_gamma_box", "params": {"gamma": 0.5}}}  # fmt: skip
    name = grid.add_column(json.dumps(config), name="box")
    expected = engine_relevance(inputs, box(inputs, gamma=0.5), grid.classes)
    torch.testing.assert_close(grid.relevance(name), expected, rtol=1e-5, atol=1e-8)
    params = json.loads(grid.column_config(name))["composite"]["params"]
    assert (params["low"], params["high"]) == (float(inputs.min()), float(inputs.max()))


def test_remove_and_move(grid: Compare):
    grid.reference = 1
    grid.remove_column("EpsilonGammaBox")
    assert grid.column_names == ["EpsilonPlusFlat", "EpsilonAlpha2Beta1Flat", "Gradient"]
    assert "1" not in grid.heatmaps and all("1" not in s for s in grid.scores.values())
    assert grid.reference == -1
    grid.move_column("Gradient", 0)
    assert grid.column_names == ["Gradient", "EpsilonPlusFlat", "EpsilonAlpha2Beta1Flat"]
    grid.add_column("EpsilonGammaBox")
    assert grid.columns[-1]["id"] == 4  # ids are never reused
    for name in grid.column_names:
        grid.remove_column(name)
    assert grid.columns == [] and grid.heatmaps == {}
    with pytest.raises(ValueError, match="no columns to draw"):
        grid.to_figure()
    grid.add_column(None)
    assert grid.column_names == ["Gradient"] and grid.status == "ready"


def test_page_commands(grid: Compare):
    calls = spy_explain(grid)
    send(grid, type="add_column", preset="EpsilonPlus", request=1)
    assert grid.answered == 1 and grid.column_names[-1] == "EpsilonPlus"
    config = grid.column_config("EpsilonGammaBox")
    send(grid, type="add_column", config=config, name="pasted", request=2)
    assert grid.column_names[-1] == "pasted" and grid.answered == 2
    send(grid, type="set_params", id=1, params={"gamma": 1.0}, request=3)
    assert grid.columns[1]["params"]["gamma"] == 1.0
    assert grid.heatmaps["1"]["request"] == 3 and grid.heatmaps["0"]["request"] == 0
    send(grid, type="set_layer_params", id=0, layer="6", params={"epsilon": 0.25}, request=4)
    assert grid.columns[0]["overrides"][0]["params"]["epsilon"] == 0.25
    send(grid, type="move_column", id=5, index=0, request=5)
    assert grid.column_names[0] == "pasted"
    send(grid, type="remove_column", id=4, request=6)
    assert "EpsilonPlus" not in grid.column_names
    assert len(calls) == 4 and grid.answered == 6 and grid.status == "ready"
    assert grid.error == ""


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ({"type": "add_column", "preset": "EpsilonPlusFlatt"}, "unknown composite"),
        ({"type": "add_column", "config": "{not json"}, r"<json>: not valid JSON"),
        ({"type": "set_params", "id": 0, "params": {"epsilon": "big"}}, "must be a finite"),
        ({"type": "set_params", "id": 0, "params": {"gama": 1}}, "no editable parameter 'gama'"),
        ({"type": "set_params", "id": 0, "params": {"epsilon": -1.0}}, "epsilon"),
        ({"type": "set_params", "id": 99, "params": {}}, "no column with id 99"),
        ({"type": "set_layer_params", "id": 0, "layer": "9", "params": {}}, "'9'"),
        ({"type": "move_column", "id": 0, "index": 7}, r"index must be an int in 0\.\.3"),
        ({"type": "compute_scores", "names": ["speed"]}, "unknown long scores"),
        ({"type": "explode"}, "unknown command"),
    ],
)
def test_bad_page_commands_keep_the_grid(grid: Compare, content, match):
    before = (grid.column_names, dict(grid.heatmaps), grid.columns)
    send(grid, request=7, **content)
    assert grid.status == "error" and grid.answered == 7
    assert re.search(match, grid.error), grid.error
    assert (grid.column_names, dict(grid.heatmaps), grid.columns) == before
    send(grid, type="set_params", id=0, params={"epsilon": 0.1}, request=8)  # still usable
    assert grid.status == "ready" and grid.error == "" and grid.answered == 8


def test_bad_python_calls_raise_clear_errors(grid: Compare):
    with pytest.raises(ColumnError, match=r"there is no column 'Nope'; columns: \['Eps"):
        grid.set_composite_params("Nope", epsilon=0.1)
    with pytest.raises(ColumnError, match="'Gradient' has no registered composite"):
        grid.set_composite_params("Gradient", epsilon=0.1)
    with pytest.raises(ColumnError, match="Gradient.*plain gradient, which has no parameters"):
        grid.set_params("0", column="Gradient", epsilon=0.1)
    with pytest.raises(ColumnError, match="unknown rule 'Gamma2'"):
        grid.assign("Gamma2", name="0", column="EpsilonPlusFlat")
    with pytest.raises(ColumnError, match="'features.0' matches no module"):
        grid.set_params("features.0", column="EpsilonPlusFlat", epsilon=0.1)
    with pytest.raises(ColumnError, match=r"overrides\[0\]\.rule"):
        grid.add_column({"format": "lrp_core.live", "version": 1, "composite": None,
                         "overrides": [{"name": "0", "rule": "Nope"}]})  # fmt: skip
    with pytest.raises(TypeError, match="a preset name, a Composite"):
        grid.add_column(3.5)
    assert grid.status == "error" and "TypeError" in grid.error
    assert grid.live.forward_count == 1 and grid.compute_count == 4


def test_malformed_json_names_the_field(data):
    inputs, _ = data
    with pytest.raises(ColumnError, match=r"column 'bad': <json>: not valid JSON") as info:
        Compare(small_model(), inputs, {"bad": '{"format": '})
    assert info.value.field == "<json>"
    bad = {"format": "lrp_core.live", "version": 1, "composite": {"name": "epsilon_plus_flat",
           "params": {"epsilon": "x"}}}  # fmt: skip
    with pytest.raises(ColumnError, match=r"column 'eps': composite\.params\.epsilon"):
        Compare(small_model(), inputs, {"eps": json.dumps(bad)})


def test_canonizers_must_be_shared(data):
    inputs, _ = data
    config = {"format": "lrp_core.live", "version": 1, "composite": None, "overrides": [],
              "canonizers": "sequential_merge_batch_norm"}  # fmt: skip
    model = small_model()
    grid = Compare(model, inputs, ["EpsilonPlusFlat"], canonizers=[])
    with pytest.raises(ColumnError, match="canonizers change the model"):
        grid.add_column(config)
    grid.close()
    # without a canonizers argument the first configuration that carries some decides
    grid = Compare(model, inputs, [config, "EpsilonPlusFlat"])
    assert [type(c).__name__ for c in grid.live.canonizers] == ["SequentialMergeBatchNorm"]
    grid.close()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"inputs": torch.zeros(3, 8)}, ValueError, r"images \[N, C, H, W\]"),
        ({"inputs": [[1.0]]}, TypeError, "must be a torch.Tensor"),
        ({"masks": torch.zeros(3, 8, 7, dtype=torch.bool)}, ValueError, r"\[3, 8, 8\]"),
        ({"masks": torch.full((3, 8, 8), 2.0)}, ValueError, "only 0 and 1"),
        ({"masks": np.zeros((3, 8, 8))}, TypeError, "masks must be a torch.Tensor"),
        ({"configs": ["EpsilonPlusFlatt"]}, ValueError, "unknown composite 'EpsilonPlusFlatt'"),
        ({"target": 4}, ValueError, r"class index in 0\.\.3, got 4"),
        ({"model": lambda x: x}, TypeError, r"needs a torch\.nn\.Module"),
    ],
)
def test_bad_constructor_arguments(data, kwargs, error, match):
    inputs, _ = data
    model = small_model()
    before = copy.deepcopy(model.state_dict())
    arguments = {"model": model, "inputs": inputs, **kwargs}
    with pytest.raises(error, match=match):
        Compare(arguments.pop("model"), arguments.pop("inputs"), **arguments)
    assert not any(m._forward_hooks or m._backward_hooks for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_fixed_target(data):
    inputs, _ = data
    grid = Compare(small_model(), inputs, ["EpsilonPlusFlat"], target=1)
    assert grid.classes == [1, 1, 1]
    expected = engine_relevance(inputs, EpsilonPlusFlat(), [1, 1, 1])
    torch.testing.assert_close(grid.relevance("EpsilonPlusFlat"), expected, rtol=1e-5, atol=1e-8)
    grid.close()


def test_close_restores_the_demo_model():
    from lrp_widgets.demo import demo_canonizers, load_model, make_batch

    model = load_model()
    images, _, masks = make_batch(2, seed=3)
    before = {key: value.clone() for key, value in model.state_dict().items()}
    grid = Compare(model, images, ["EpsilonPlusFlat", "EpsilonGammaBox"],
                   canonizers=demo_canonizers(), masks=masks)  # fmt: skip
    grid.set_composite_params("EpsilonGammaBox", gamma=0.5)
    grid.close()
    after = model.state_dict()
    assert list(after) == list(before)
    assert all(torch.equal(before[key], after[key]) for key in before)  # bit-identical
    assert not any(
        m._forward_hooks or m._backward_hooks or m._forward_pre_hooks for m in model.modules()
    )
    assert not hasattr(model.block, "canonizer_sum")


def test_a_model_explained_elsewhere_is_refused(data):
    inputs, _ = data
    model = small_model()
    explorer = Explorer(model, inputs)
    with pytest.raises(RuntimeError, match=r"already being explained live.*close that one first"):
        Compare(model, inputs, [explorer])
    grid = Compare(small_model(), inputs, [explorer])  # its configuration on a copy works
    torch.testing.assert_close(grid.relevance("Explorer"), explorer.relevance)
    grid.close()
    explorer.close()
    assert not any(m._forward_hooks or m._backward_hooks for m in model.modules())


def test_config_errors_are_value_errors():
    assert issubclass(ColumnError, ValueError) and issubclass(ConfigError, ValueError)
