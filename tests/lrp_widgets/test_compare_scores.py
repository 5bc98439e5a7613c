"""Scores of the Compare widget: equal to direct calls of ``lrp_core.evaluation``, checked on
maps that are perfect by construction and on random maps, with progress and cancellation.

Definitions checked here by independent numpy formulas (``P = max(r, 0)``, ``r`` the
channel-summed map): relevance mass = ``sum(P * mask) / sum(P)``; pointing game = ``mask`` at
the first arg-max of ``r``; conservation error = ``|sum R - f_t| / |f_t|``.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from _compare_helpers import CLASSES, batch, engine_relevance, small_model

from lrp_core.composites import EpsilonPlusFlat
from lrp_core.evaluation import class_sensitivity, region_perturbation, sparseness
from lrp_core.live import LiveResult
from lrp_widgets import Compare
from lrp_widgets.compare._scores import ScoreOptions, cheap_scores


@pytest.fixture
def grid() -> Compare:
    inputs, masks = batch()
    widget = Compare(small_model(), inputs, ["EpsilonPlusFlat", "Gradient"], masks=masks)
    widget._runner.options = ScoreOptions(patch_size=2, regions_per_step=4)  # 16 regions, 5 steps
    yield widget
    widget.close()


def fake_result(relevance: torch.Tensor, output: torch.Tensor, seed: torch.Tensor) -> LiveResult:
    return LiveResult(relevance, output, seed, None, {}, 0, 0.0)


def test_cheap_scores_on_perfect_and_random_maps():
    _, masks = batch()
    n = masks.shape[0]
    output = torch.tensor([[2.0, -1.0], [0.5, 3.0], [1.0, 1.0]])
    seed = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    # perfect by construction: relevance is the mask, spread over 3 channels, summing to the
    # relevance put in at the output (the seed's sum, 1 here)
    perfect = masks[:, None].expand(n, 3, -1, -1).double()
    perfect = perfect / perfect.flatten(1).sum(1)[:, None, None, None]
    scores = cheap_scores(fake_result(perfect, output.double(), seed.double()), masks)
    assert scores["relevance_mass"] == pytest.approx([1.0] * n)
    assert scores["pointing_game"] == [1.0] * n
    assert scores["conservation_error"] == pytest.approx([0.0] * n, abs=1e-12)
    # random map: independent numpy formulas
    generator = torch.Generator().manual_seed(5)
    relevance = torch.randn(n, 3, 8, 8, generator=generator, dtype=torch.float64)
    scores = cheap_scores(fake_result(relevance, output.double(), seed.double()), masks)
    r = relevance.sum(1).numpy()
    m = masks.numpy()
    positive = np.maximum(r, 0)
    mass = (positive * m).sum((1, 2)) / positive.sum((1, 2))
    hits = [float(m[i].flat[np.argmax(r[i])]) for i in range(n)]
    explained = seed.sum(1).numpy()
    error = np.abs(relevance.flatten(1).sum(1).numpy() - explained) / np.abs(explained)
    assert scores["relevance_mass"] == pytest.approx(mass.tolist(), rel=1e-12)
    assert scores["pointing_game"] == hits
    assert scores["conservation_error"] == pytest.approx(error.tolist(), rel=1e-12)
    assert scores["sparseness"] == pytest.approx(sparseness(relevance).tolist(), rel=1e-12)


def test_undefined_samples_get_none():
    _, masks = batch()
    relevance = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    relevance[1] = -relevance[1].abs()  # no positive relevance: relevance mass undefined
    relevance[2] = 0  # all zero: sparseness undefined
    output, seed = torch.ones(3, 2), torch.tensor([[1.0, 0], [1, 0], [1, 0]])
    scores = cheap_scores(fake_result(relevance, output, seed), masks)
    assert scores["relevance_mass"][1] is None and scores["relevance_mass"][0] is not None
    assert scores["sparseness"][2] is None and None not in scores["sparseness"][:2]
    assert set(cheap_scores(fake_result(relevance, output, seed), None)) == {
        "conservation_error",
        "sparseness",
    }


def test_widget_cheap_scores_equal_direct_calls(grid: Compare):
    output = grid.live.output
    seed = torch.nn.functional.one_hot(torch.tensor(grid.classes), CLASSES).float()
    for column in grid.columns:
        relevance = grid.relevance(column["name"])
        expected = cheap_scores(fake_result(relevance, output, seed), batch()[1])
        for name, values in expected.items():
            assert grid.scores[name][str(column["id"])] == pytest.approx(values), name


def test_long_scores_equal_direct_calls(grid: Compare):
    inputs, _ = batch()
    classes = grid.classes
    seen = []
    scores = grid.compute_scores(progress=lambda done, total: seen.append((done, total)))
    # 2 columns x (faithfulness: 4 steps + clean point, class sensitivity: 2 maps), from 0
    assert seen == [(k, 14) for k in range(15)]
    model = small_model()
    for column, composite in zip(grid.columns, [EpsilonPlusFlat(), None], strict=True):
        key = str(column["id"])
        relevance = grid.relevance(column["name"])
        curves = region_perturbation(model, inputs, relevance, classes, patch_size=2,
                                     regions_per_step=4, baseline="zeros")  # fmt: skip
        assert scores["faithfulness"][key] == pytest.approx(curves.abpc.tolist(), rel=1e-5)
        np.testing.assert_allclose(grid.curves[key]["morf"], curves.morf, rtol=1e-5)
        np.testing.assert_allclose(grid.curves[key]["lerf"], curves.lerf, rtol=1e-5)
        assert grid.curves[key]["fractions"] == [0.0, 0.25, 0.5, 0.75, 1.0]

        def explain(x, c, composite=composite):
            return engine_relevance(x, composite, c.tolist())

        expected = class_sensitivity(explain, inputs, classes, num_classes=CLASSES,
                                     generator=torch.Generator().manual_seed(0))  # fmt: skip
        assert scores["class_sensitivity"][key] == pytest.approx(
            expected.similarity.tolist(), rel=1e-5
        )
    assert grid.progress == {} and grid.status == "ready"


def test_cancel_stops_between_steps(grid: Compare):
    seen = []

    def progress(done, total):
        seen.append(done)
        if done == 3:
            grid.cancel()

    grid.compute_scores(["faithfulness"], progress=progress)
    assert seen == [0, 1, 2, 3]  # nothing ran after the cancel
    assert grid.scores["faithfulness"] == {} and grid.curves == {}
    assert "cancelled" in grid.error and grid.status == "ready" and grid.progress == {}
    stop = grid.compute_scores(["class_sensitivity"], progress=lambda done, total: done < 3)
    assert list(stop["class_sensitivity"]) == ["0"]  # first column done, second stopped

    def interrupt(done, total):
        if done == 2:
            raise KeyboardInterrupt  # as Ctrl+C in a notebook would

    with pytest.raises(KeyboardInterrupt):
        grid.compute_scores(progress=interrupt)
    assert grid.progress == {} and grid.status == "ready" and not grid._runner.busy
    grid.compute_scores(["faithfulness"])  # usable afterwards
    assert set(grid.scores["faithfulness"]) == {"0", "1"}


def test_changing_a_column_drops_its_long_scores(grid: Compare):
    grid.compute_scores(["faithfulness"])
    grid.set_composite_params("EpsilonPlusFlat", epsilon=0.1)
    assert list(grid.scores["faithfulness"]) == ["1"] and list(grid.curves) == ["1"]


def test_page_runs_scores_in_the_background(grid: Compare):
    updates = []
    grid.observe(lambda change: updates.append(dict(change["new"])), names="progress")
    grid._on_message(grid, {"type": "compute_scores", "names": ["faithfulness"], "request": 4}, [])
    assert grid.answered == 4  # answered at once; the work goes on in its thread
    grid._runner._thread.join(30)
    assert set(grid.scores["faithfulness"]) == {"0", "1"}
    done = [u["done"] for u in updates if u]
    assert done == list(range(11)) and updates[-1] == {}
    assert grid.status == "ready" and grid.error == ""


def test_page_cancel_stops_the_background_thread(grid: Compare):
    started = threading.Event()
    release = threading.Event()
    forward = grid._runner._forward

    def slow_forward(x):  # hold the first model call until the test has sent cancel
        started.set()
        release.wait(10)
        return forward(x)

    grid._runner._forward = slow_forward
    done = []
    grid.observe(lambda change: done.append(change["new"].get("done")), names="progress")
    grid._on_message(grid, {"type": "compute_scores", "request": 1}, [])
    assert started.wait(10) and grid.status == "computing"
    grid._on_message(grid, {"type": "cancel"}, [])
    release.set()
    grid._runner._thread.join(30)
    assert [d for d in done if d is not None] == [0]  # stopped before its first step ended
    assert grid.progress == {} and grid.status == "ready" and "cancelled" in grid.error
    assert grid.scores["faithfulness"] == {} and grid.scores["class_sensitivity"] == {}
