"""An Explorer tuned in a notebook is a configuration of a data-set run (lrp_core.datasets):
the store holds the Explorer's own relevance for the samples it shows."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lrp_core.core import registered_hook
from lrp_core.datasets import DatasetAttributionError, attribute_dataset
from lrp_widgets import Explorer
from tests.lrp_core.datasets import fixtures

h5py = pytest.importorskip("h5py")


def class_one(output: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return torch.ones(len(output), dtype=torch.long)


def test_a_tuned_explorer_is_a_configuration_and_its_model_must_be_free(tmp_path):
    model = fixtures.model()
    data = fixtures.data()
    shown = data.tensors[0][:4]
    explorer = Explorer(model, shown, "epsilon_plus_flat", target=1)
    explorer.assign("Epsilon", name="0", epsilon=0.5)
    arguments = (data, {"tuned": explorer}, tmp_path / "store")
    options = {"target": class_one, "batch_size": 8, "scores": (), "progress": False}
    # while the Explorer is open, its hooks are on the model: refused, the Explorer untouched
    with pytest.raises(DatasetAttributionError, match=r"carries LRP hooks.*explorer.close\(\)"):
        attribute_dataset(model, *arguments, **options)
    assert not (tmp_path / "store").exists()
    expected = explorer.relevance.numpy()
    config = json.loads(explorer.config)
    explorer.close()
    assert all(registered_hook(m) is None for m in model.modules())

    store = attribute_dataset(model, *arguments, **options)
    with h5py.File(store.files["tuned"], "r") as file:
        np.testing.assert_allclose(file["attribution"][:4], expected, rtol=1e-9, atol=1e-14)
        assert file["attribution"].shape[0] == fixtures.SAMPLES
        assert json.loads(file.attrs["config"]) == config
    assert config["composite"]["name"] == "epsilon_plus_flat"
    assert config["overrides"][0]["params"]["epsilon"] == 0.5
