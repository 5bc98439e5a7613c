"""attribute_dataset, in-process engine: the store's layout (read with plain h5py), its values
against independent references, configurations, targets, scores, errors, cancel and resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from lrp_core.attribution import Gradient
from lrp_core.composites import EpsilonGammaBox, EpsilonPlusFlat, NameMapComposite
from lrp_core.core import registered_hook
from lrp_core.datasets import (
    DatasetAttributionError,
    StoreMismatchError,
    attribute_dataset,
)
from lrp_core.evaluation import (
    Cancelled,
    conservation_error,
    pointing_game,
    region_perturbation,
    relevance_mass_accuracy,
    sparseness,
)
from lrp_core.live import parse_config
from lrp_core.rules import Epsilon
from tests.lrp_core.model_state import snapshot, tensor_objects

from . import fixtures

h5py = pytest.importorskip("h5py")


def read(path) -> dict:
    """Every dataset of a store file as numpy arrays, with plain h5py."""
    with h5py.File(path, "r") as file:
        arrays = {k: file[k][()] for k in file if isinstance(file[k], h5py.Dataset)}
        arrays.update({f"scores/{k}": v[()] for k, v in file["scores"].items()})
        arrays["attrs"] = dict(file.attrs)
        arrays["score_attrs"] = dict(file["scores"].attrs)
    return arrays


def json_config(*overrides: dict) -> dict:
    """A configuration in the lrp_core.config format: no composite, only ``overrides``."""
    return {"format": "lrp_core.live", "version": 1, "composite": None, "canonizers": None,
            "overrides": list(overrides)}  # fmt: skip


def run(tmp_path, configs="EpsilonPlusFlat", **kwargs):
    kwargs.setdefault("batch_size", 4)
    kwargs.setdefault("progress", False)
    data = kwargs.pop("data", None) or fixtures.data()
    model = kwargs.pop("model", None) or fixtures.model()
    return attribute_dataset(model, data, configs, tmp_path / "store", **kwargs)


def test_the_store_has_virelays_layout_read_with_plain_h5py(tmp_path):
    store = run(tmp_path, {"eps": "EpsilonPlusFlat"})
    path = tmp_path / "store" / "eps.attribution.h5"
    assert store.files == {"eps": path.resolve()}
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == ["eps.attribution.h5"]
    n = fixtures.SAMPLES
    with h5py.File(path, "r") as file:
        assert file["attribution"].shape == (n, 2, 8, 8)
        assert file["attribution"].chunks == (1, 2, 8, 8)
        assert file["attribution"].compression == "gzip"
        assert file["prediction"].shape == (n, 3) and file["prediction"].dtype == np.float32
        assert file["label"].shape == (n, 3)
        assert file["index"].shape == (n,)
        for name in ("prediction", "label", "index", "target", "true_label"):
            assert file[name].compression == "gzip", name
        assert sorted(file["scores"]) == sorted(
            ["conservation_error", "sparseness", "relevance_mass", "pointing_game", "faithfulness"]
        )
        config = json.loads(file.attrs["config"])
        assert config["composite"]["name"] == "epsilon_plus_flat"
        parse_config(config)  # the lrp_core.config format, readable by the widgets
        assert file.attrs["name"] == "eps"


def test_values_match_the_attributor_and_the_scores_called_directly(tmp_path):
    store = run(tmp_path, {"eps": EpsilonPlusFlat()}, faithfulness_steps=4)
    stored = read(store.files["eps"])
    model = fixtures.model()
    images, labels, masks = fixtures.data().tensors
    seed = torch.eye(3, dtype=torch.float64)[labels]
    with Gradient(model, EpsilonPlusFlat()) as attributor:
        output, relevance = attributor(images, seed)
    np.testing.assert_array_equal(stored["index"], np.arange(fixtures.SAMPLES))
    np.testing.assert_array_equal(stored["true_label"], labels.numpy())
    np.testing.assert_array_equal(stored["target"], labels.numpy())
    np.testing.assert_array_equal(stored["label"], seed.numpy())
    np.testing.assert_allclose(stored["prediction"], output.float().numpy(), rtol=1e-6)
    np.testing.assert_allclose(stored["attribution"], relevance.numpy(), rtol=1e-10, atol=1e-14)
    expected = {
        "conservation_error": conservation_error(relevance, seed),
        "sparseness": sparseness(relevance),
        "relevance_mass": relevance_mass_accuracy(relevance, masks),
        "pointing_game": pointing_game(relevance, masks).double(),
        # 64 one-pixel regions in at most 4 steps: 16 regions per step
        "faithfulness": region_perturbation(
            model, images, relevance, labels, patch_size=1, regions_per_step=16
        ).abpc,
    }
    for name, value in expected.items():
        np.testing.assert_allclose(stored[f"scores/{name}"], value.numpy(), rtol=1e-5, err_msg=name)
        mean = stored["score_attrs"][f"{name}_mean"]
        np.testing.assert_allclose(mean, value.double().mean().item(), rtol=1e-5)


def test_the_plain_gradient_is_the_autograd_gradient_of_the_target_logit(tmp_path):
    # independent of the engine: d output[n, label_n] / d input[n], by torch.autograd
    store = run(tmp_path, {"grad": None}, scores=())
    stored = read(store.files["grad"])
    model = fixtures.model()
    images, labels, _ = fixtures.data().tensors
    inputs = images.clone().requires_grad_(True)
    model(inputs).gather(1, labels[:, None]).sum().backward()
    np.testing.assert_allclose(stored["attribution"], inputs.grad.numpy(), rtol=1e-12)


def test_lrp_epsilon_conserves_relevance_on_a_bias_free_network(tmp_path):
    # theory: with no biases, a tiny epsilon and relevance passed through the ReLUs, the input
    # relevance sums to the seed (1)
    model = fixtures.relu_net(bias=False, seed=3)
    config = json_config(
        {"type": "Linear", "rule": "Epsilon", "params": {"epsilon": 1e-9}},
        {"type": "Conv2d", "rule": "Epsilon", "params": {"epsilon": 1e-9}},
        {"type": "ReLU", "rule": "Pass"},
    )
    store = run(tmp_path, {"eps": config}, model=model, scores=["conservation_error"])
    stored = read(store.files["eps"])
    # ... where the explained logit is not 0 (all ReLUs dead leaves nothing to distribute)
    alive = np.abs(stored["prediction"][np.arange(fixtures.SAMPLES), stored["target"]]) > 1e-6
    assert alive.sum() >= fixtures.SAMPLES - 2
    assert np.max(stored["scores/conservation_error"][alive]) < 1e-5  # eps / z terms
    np.testing.assert_allclose(stored["attribution"].sum((1, 2, 3))[alive], 1.0, atol=1e-5)


class ExplorerLike:
    """Duck-types an Explorer: only a ``config`` JSON attribute."""

    def __init__(self, config: dict):
        self.config = json.dumps(config)


def test_every_kind_of_configuration(tmp_path):
    override = json_config({"name": "0", "rule": "Epsilon", "params": {"epsilon": 0.5}})
    box = EpsilonGammaBox(low=-3.0, high=3.0)
    store = run(
        tmp_path,
        [
            "epsilon_plus_flat",
            EpsilonPlusFlat(),
            override,
            json.dumps(override),
            ExplorerLike(override),
            box,
        ],
        scores=(),
    )
    assert list(store.files) == [
        "EpsilonPlusFlat",
        "EpsilonPlusFlat-2",
        "Gradient+overrides",
        "Gradient+overrides-2",
        "ExplorerLike",
        "EpsilonGammaBox",
    ]
    model = fixtures.model()
    images, labels, _ = fixtures.data().tensors
    seed = torch.eye(3, dtype=torch.float64)[labels]
    composites = {
        "EpsilonPlusFlat": EpsilonPlusFlat(),
        "EpsilonPlusFlat-2": EpsilonPlusFlat(),
        "Gradient+overrides": NameMapComposite([(("0",), Epsilon(epsilon=0.5))]),
        "Gradient+overrides-2": NameMapComposite([(("0",), Epsilon(epsilon=0.5))]),
        "ExplorerLike": NameMapComposite([(("0",), Epsilon(epsilon=0.5))]),
        "EpsilonGammaBox": EpsilonGammaBox(low=-3.0, high=3.0),
    }
    for name, composite in composites.items():
        _, expected = Gradient(model, composite)(images, seed)
        np.testing.assert_allclose(
            read(store.files[name])["attribution"], expected.numpy(), rtol=1e-10, err_msg=name
        )
    stored_config = json.loads(read(store.files["ExplorerLike"])["attrs"]["config"])
    assert stored_config["composite"] is None
    (entry,) = stored_config["overrides"]
    assert (entry["name"], entry["rule"], entry["params"]["epsilon"]) == ("0", "Epsilon", 0.5)


@pytest.mark.parametrize("target", ["prediction", "callable"])
def test_targets(tmp_path, target):
    model = fixtures.model()
    images, labels, _ = fixtures.data().tensors
    if target == "prediction":
        expected = model(images).argmax(1)
    else:
        expected = (labels + 1) % 3
        target = lambda output, labels: (labels + 1) % 3  # noqa: E731
    store = run(tmp_path, {"g": None}, target=target, scores=())
    stored = read(store.files["g"])
    np.testing.assert_array_equal(stored["target"], expected.numpy())
    np.testing.assert_array_equal(stored["label"].argmax(1), expected.numpy())
    assert (stored["label"].sum(1) == 1).all()


def test_float16_attributions(tmp_path):
    full = read(run(tmp_path / "a", {"e": "EpsilonPlusFlat"}, scores=()).files["e"])
    half = read(run(tmp_path / "b", {"e": "EpsilonPlusFlat"}, scores=(), float16=True).files["e"])
    assert half["attribution"].dtype == np.float16
    np.testing.assert_allclose(half["attribution"], full["attribution"], rtol=2e-3, atol=1e-4)


class DictItems(Dataset):
    """Items as dicts, without masks."""

    def __init__(self):
        self.images, self.labels = fixtures.data(masks=False).tensors

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"image": self.images[i], "label": int(self.labels[i])}


def test_a_dataloader_of_dict_items_without_masks(tmp_path):
    loader = DataLoader(DictItems(), batch_size=5)
    store = run(tmp_path, {"g": None}, data=loader, batch_size=None)
    stored = read(store.files["g"])
    assert sorted(k[7:] for k in stored if k.startswith("scores/")) == [
        "conservation_error", "faithfulness", "sparseness"]  # fmt: skip
    assert json.loads(stored["attrs"]["settings"])["batch_size"] == 5
    np.testing.assert_array_equal(stored["index"], np.arange(fixtures.SAMPLES))


def test_the_model_is_left_as_it_was(tmp_path):
    model = fixtures.model().train()
    before, objects = snapshot(model), tensor_objects(model)
    run(tmp_path, ["EpsilonPlusFlat", None], model=model, scores=())
    assert model.training
    assert all(registered_hook(m) is None for m in model.modules())
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert tensor_objects(model).keys() == objects.keys()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"configs": "NoSuchComposite"}, "unknown composite"),
        ({"configs": "EpsilonGammaBox"}, "needs parameters"),
        ({"configs": 3.5}, "a configuration must be"),
        ({"configs": {"format": "lrp_core.live", "version": 7}}, "version"),
        ({"configs": []}, "at least one"),
        ({"target": "logits"}, "target must be"),
        ({"scores": ["nope"]}, "unknown"),
        ({"engine": "spark"}, "engine must be"),
        ({"batch_size": 0}, "batch_size"),
        ({"data": DataLoader(fixtures.data(), shuffle=True)}, "read in order"),
        ({"data": [1, 2]}, "torch Dataset"),
    ],
)
def test_bad_arguments_are_named_and_leave_nothing_behind(tmp_path, kwargs, message):
    model = fixtures.model()
    before = snapshot(model)
    configs = kwargs.pop("configs", "EpsilonPlusFlat")
    with pytest.raises(DatasetAttributionError, match=message):
        run(tmp_path, configs, model=model, **kwargs)
    assert all(registered_hook(m) is None for m in model.modules())
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_mask_scores_without_masks_and_label_target_without_labels(tmp_path):
    with pytest.raises(DatasetAttributionError, match="need ground-truth masks"):
        run(tmp_path, data=fixtures.data(masks=False), scores=["pointing_game"])
    images = fixtures.data().tensors[0]
    with pytest.raises(DatasetAttributionError, match="needs labels"):
        run(tmp_path, data=torch.utils.data.TensorDataset(images))


def test_cancel_then_resume_computes_only_the_rest(tmp_path):
    reference = read(run(tmp_path / "ref", ["EpsilonPlusFlat", None]).files["Gradient"])
    seen = []

    def stop_after_two_batches(done, total):
        seen.append(done)
        return len(seen) < 2

    with pytest.raises(Cancelled):
        run(tmp_path, ["EpsilonPlusFlat", None], progress=stop_after_two_batches)
    assert seen == [4, 8]
    calls = []
    store = run(tmp_path, ["EpsilonPlusFlat", None], progress=lambda d, t: calls.append((d, t)))
    # 6 batches per configuration, 2 done: 10 left; the first resumed report counts the 8 done
    assert len(calls) == 10 and calls[0] == (12, 44) and calls[-1] == (44, 44)
    resumed = read(store.files["Gradient"])
    for key in ("attribution", "prediction", "label", "index", "scores/faithfulness"):
        np.testing.assert_array_equal(resumed[key], reference[key], err_msg=key)
    assert not (tmp_path / "store" / ".parts").exists()


def test_a_finished_store_is_kept_and_other_settings_are_refused(tmp_path):
    store = run(tmp_path, {"e": "EpsilonPlusFlat"}, scores=())
    mtime = store.files["e"].stat().st_mtime_ns
    calls = []
    run(tmp_path, {"e": "EpsilonPlusFlat"}, scores=(), progress=lambda d, t: calls.append(d))
    assert calls == [] and store.files["e"].stat().st_mtime_ns == mtime
    with pytest.raises(StoreMismatchError, match="batch_size"):
        run(tmp_path, {"e": "EpsilonPlusFlat"}, scores=(), batch_size=5)
    run(tmp_path, {"e": "EpsilonPlusFlat"}, scores=(), batch_size=5, overwrite=True)
    with h5py.File(store.files["e"], "r") as file:
        assert json.loads(file.attrs["settings"])["batch_size"] == 5


def test_progress_true_draws_a_tqdm_bar_of_every_sample(tmp_path, capsys):
    pytest.importorskip("tqdm")
    run(tmp_path, ["EpsilonPlusFlat", None], scores=(), progress=True)
    bar = capsys.readouterr().err
    assert "attributing" in bar and "44/44" in bar  # 22 samples x 2 configurations
