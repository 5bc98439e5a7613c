"""Evaluation scores against direct, independent computations on small cases.

Each test names the formula it checks; references are written with numpy loops in float64.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lrp_core.evaluation import (
    Cancelled,
    EvaluationInputError,
    class_sensitivity,
    conservation_error,
    make_baseline,
    pointing_game,
    random_other_classes,
    region_perturbation,
    relevance_mass_accuracy,
    sparseness,
)

# ---------------------------------------------------------------- conservation and sparseness


def test_conservation_error_hand_computed():
    # LRP: error = |sum R - sum seed| / |sum seed|: sample 0: |6 - 1| / 1, sample 1: |-1 - 2| / 2
    relevance = torch.tensor([[1.0, 2.0, 3.0], [0.0, -1.0, 0.0]])
    seed = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert torch.allclose(conservation_error(relevance, seed), torch.tensor([5.0, 1.5]))
    # with the output: error = |sum R - sum seed*out| / |sum seed*out|: |6 - 4| / 4, |-1 - 4| / 4
    output = torch.tensor([[4.0, 9.0], [1.0, 2.0]])
    assert torch.allclose(conservation_error(relevance, seed, output), torch.tensor([0.5, 1.25]))


def test_conservation_error_zero_for_conservative_map():
    output = torch.randn(3, 5, dtype=torch.float64)
    seed = torch.nn.functional.one_hot(torch.tensor([0, 2, 4]), 5).double()
    spread = torch.full((3, 7), 1 / 7, dtype=torch.float64)
    assert torch.allclose(conservation_error(spread, seed), torch.zeros(3).double())
    relevance = (seed * output).sum(1, keepdim=True) * spread
    assert torch.allclose(conservation_error(relevance, seed, output), torch.zeros(3).double())


@pytest.mark.parametrize("bias", [False, True])
def test_conservation_error_of_lrp_epsilon(bias: bool):
    # LRP-epsilon with a tiny epsilon conserves the one-hot seed exactly on a bias-free ReLU net
    # (sum_i x_i w_ij / z_j = 1 per layer); biases absorb part of it, so the error is then > 0
    from lrp_core.attribution import Gradient
    from lrp_core.map_composites import LayerMapComposite
    from lrp_core.rules import Epsilon

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(6, 8, bias=bias), torch.nn.ReLU(), torch.nn.Linear(8, 3, bias=bias)
    ).double()
    if bias:
        torch.nn.init.constant_(model[0].bias, 0.5)
    x = torch.randn(4, 6, dtype=torch.float64)
    seed = torch.eye(3, dtype=torch.float64)[[0, 1, 2, 0]]
    composite = LayerMapComposite([(torch.nn.Linear, Epsilon(epsilon=1e-12))])
    with Gradient(model, composite) as attributor:
        _, relevance = attributor(x, seed)
    error = conservation_error(relevance, seed)
    if bias:
        assert (error > 1e-3).all()
    else:
        assert torch.allclose(error, torch.zeros(4, dtype=torch.float64), atol=1e-9)


def _gini_mean_difference(x: np.ndarray) -> float:
    # Gini = sum_i sum_j |x_i - x_j| / (2 n sum_i x_i), the mean-difference form (independent of
    # the sorted-weights form used by the implementation).
    x = np.abs(x).ravel()
    return np.abs(x[:, None] - x[None, :]).sum() / (2 * x.size * x.sum())


def test_sparseness_matches_mean_difference_form():
    relevance = torch.randn(4, 2, 3, 3, generator=torch.Generator().manual_seed(0)).double()
    expected = [_gini_mean_difference(r.numpy()) for r in relevance]
    assert np.allclose(sparseness(relevance).numpy(), expected)


def test_sparseness_extremes():
    # one non-zero element: 1 - 1/n; constant map: 0
    one_hot = torch.zeros(1, 10)
    one_hot[0, 3] = -2.0
    assert sparseness(one_hot).item() == pytest.approx(0.9)
    assert sparseness(torch.full((1, 10), 0.3)).item() == pytest.approx(0.0, abs=1e-7)


# ---------------------------------------------------------------- localisation


def test_relevance_mass_accuracy_hand_computed():
    # channel sum r = [[3, -1], [1, 0]]; positive mass 4, inside mask {(0,1),(1,0)}: 1 -> 0.25
    relevance = torch.tensor([[[[1.0, -2.0], [1.0, 0.0]], [[2.0, 1.0], [0.0, 0.0]]]])
    mask = torch.tensor([[[0, 1], [1, 0]]])
    assert relevance_mass_accuracy(relevance, mask).item() == pytest.approx(0.25)


def test_relevance_mass_accuracy_perfect_and_random():
    generator = torch.Generator().manual_seed(1)
    mask = torch.rand(3, 6, 6, generator=generator) > 0.6
    # relevance equal to the mask is perfect by construction
    assert torch.allclose(relevance_mass_accuracy(mask.float()[:, None], mask), torch.ones(3))
    relevance = torch.randn(3, 2, 6, 6, generator=generator).double()
    positive = relevance.sum(1).clamp(min=0).numpy()
    expected = [(p * m).sum() / p.sum() for p, m in zip(positive, mask.numpy(), strict=True)]
    assert np.allclose(relevance_mass_accuracy(relevance, mask).numpy(), expected)


def test_pointing_game_hit_miss_and_tolerance():
    relevance = torch.zeros(2, 5, 5)
    relevance[0, 1, 1] = 5.0  # in the mask
    relevance[1, 4, 4] = 5.0  # distance from (2, 2) is sqrt(8) ~ 2.83
    mask = torch.zeros(2, 5, 5, dtype=torch.bool)
    mask[:, 1:3, 1:3] = True
    assert pointing_game(relevance, mask).tolist() == [True, False]
    assert pointing_game(relevance, mask, tolerance=2.5).tolist() == [True, False]
    assert pointing_game(relevance, mask, tolerance=2.9).tolist() == [True, True]


def test_pointing_game_perfect_map_and_channel_summed_input():
    mask = torch.zeros(2, 4, 4, dtype=torch.bool)
    mask[0, 0, 3] = mask[1, 2:, :2] = True
    assert pointing_game(mask.double(), mask).all()  # (N, H, W) relevance equal to the mask
    assert pointing_game(mask.double()[:, None], mask[:, None]).all()


def test_pointing_game_random_maps_match_direct_argmax():
    generator = torch.Generator().manual_seed(2)
    relevance = torch.randn(8, 3, 7, 7, generator=generator)
    mask = torch.rand(8, 7, 7, generator=generator) > 0.5
    mask[:, 0, 0] = True
    expected = []
    for r, m in zip(relevance.sum(1).numpy(), mask.numpy(), strict=True):
        i, j = np.unravel_index(np.argmax(r), r.shape)
        expected.append(bool(m[i, j]))
    assert pointing_game(relevance, mask).tolist() == expected


# ---------------------------------------------------------------- faithfulness


class PixelSumModel(torch.nn.Module):
    """Class 0 score = sum_{c,h,w} weight * x, class 1 = -class 0: depends only on known pixels."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.weight = weight
        self.calls: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(x.shape[0])
        score = (x * self.weight).flatten(1).sum(1)
        return torch.stack([score, -score], 1)


def _reference_curves(model, x, relevance, target, patch, per_step, descending):
    # Direct loop: sum relevance per patch, order the patches, zero the first k*m of them.
    n, _, h, w = x.shape
    curves = []
    for i in range(n):
        r = relevance[i].sum(0).double().numpy()
        patches = [(a, b) for a in range(0, h, patch) for b in range(0, w, patch)]
        sums = np.array([r[a : a + patch, b : b + patch].sum() for a, b in patches])
        order = np.argsort(-sums if descending else sums, kind="stable")
        steps = int(np.ceil(len(patches) / per_step))
        curve = []
        for k in range(steps + 1):
            xi = x[i].clone()
            for idx in order[: k * per_step]:
                a, b = patches[idx]
                xi[:, a : a + patch, b : b + patch] = 0.0
            curve.append(model(xi[None])[0, target].item())
        curves.append(curve)
    return np.array(curves)


@pytest.fixture
def pixel_case():
    generator = torch.Generator().manual_seed(3)
    weight = torch.rand(2, 4, 6, generator=generator).double()
    x = torch.rand(3, 2, 4, 6, generator=generator).double() + 0.1
    return PixelSumModel(weight), x


@pytest.mark.parametrize(("patch", "per_step"), [(1, 1), (2, 1), (2, 4), (3, 2)])
def test_region_perturbation_matches_direct_loop(pixel_case, patch, per_step):
    model, x = pixel_case
    relevance = torch.randn(x.shape, generator=torch.Generator().manual_seed(4)).double()
    result = region_perturbation(
        model, x, relevance, 0, patch_size=patch, regions_per_step=per_step
    )
    morf = _reference_curves(model, x, relevance, 0, patch, per_step, descending=True)
    lerf = _reference_curves(model, x, relevance, 0, patch, per_step, descending=False)
    assert np.allclose(result.morf.numpy(), morf)
    assert np.allclose(result.lerf.numpy(), lerf)
    # ABPC = 1/(S+1) sum_k (lerf_k - morf_k)
    assert np.allclose(result.abpc.numpy(), (lerf - morf).mean(1))
    assert result.fractions[0] == 0 and result.fractions[-1] == 1


def test_perfect_map_removes_score_first_and_beats_random(pixel_case):
    model, x = pixel_case
    perfect = model.weight * x  # each pixel's exact contribution to the class-0 score
    best = region_perturbation(model, x, perfect, 0, regions_per_step=4)
    # Every contribution w*x is positive, so both curves only fall; MoRF removes the largest
    # contributions first, so it lies below LeRF at every step.
    assert (best.morf.diff(dim=1) <= 1e-12).all()
    assert (best.lerf.diff(dim=1) <= 1e-12).all()
    assert (best.morf <= best.lerf + 1e-12).all()
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(5)).double()
    random = region_perturbation(model, x, noise, 0, regions_per_step=4)
    assert (best.abpc > random.abpc).all()


def test_pixel_only_model_morf_hits_zero_after_known_pixels():
    # The score depends only on 3 pixels; a map marking them removes the whole score in 3 steps.
    weight = torch.zeros(1, 5, 5, dtype=torch.float64)
    weight[0, [0, 2, 4], [1, 3, 0]] = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    model = PixelSumModel(weight)
    x = torch.ones(1, 1, 5, 5, dtype=torch.float64)
    result = region_perturbation(model, x, weight[None], 0, regions_per_step=1)
    assert result.morf[0, :4].tolist() == [6.0, 3.0, 1.0, 0.0]
    assert (result.morf[0, 3:] == 0).all()
    assert (result.lerf[0, :23] == 6.0).all()


def test_batched_equals_unbatched_and_call_sizes(pixel_case):
    model, x = pixel_case
    relevance = torch.randn(x.shape, generator=torch.Generator().manual_seed(6)).double()
    whole = region_perturbation(model, x, relevance, [0, 1, 0], regions_per_step=0.25)
    steps = whole.morf.shape[1]
    model.calls.clear()
    single = region_perturbation(
        model, x, relevance, [0, 1, 0], regions_per_step=0.25, batch_size=4
    )
    assert model.calls == [4, 2] * steps  # 2 N = 6 images per step, split 4 + 2
    for name in ("morf", "lerf", "abpc"):
        assert torch.allclose(getattr(whole, name), getattr(single, name))
    assert single.targets.tolist() == [0, 1, 0]


def test_default_target_is_prediction_and_steps_from_fraction(pixel_case):
    model, x = pixel_case
    result = region_perturbation(model, x, -x, None, patch_size=2, regions_per_step=0.5)
    # 2 x 3 = 6 regions, ceil(0.5 * 6) = 3 per step -> S = 2, fractions 0, 1/2, 1
    assert result.fractions.tolist() == [0.0, 0.5, 1.0]
    assert result.targets.tolist() == [0, 0, 0]  # positive inputs and weights: class 0 wins


def test_progress_counts_and_cancellation(pixel_case):
    model, x = pixel_case
    calls = []
    region_perturbation(
        model, x, x, 0, regions_per_step=6, progress=lambda k, t: calls.append((k, t))
    )
    assert calls == [(k, 5) for k in range(1, 6)]  # 24 regions, 6 per step: S + 1 = 5 points

    seen = []

    def stop_after_two(step, total):
        seen.append(step)
        return step < 2  # False at step 2 cancels

    with pytest.raises(Cancelled):
        region_perturbation(model, x, x, 0, regions_per_step=6, progress=stop_after_two)
    assert seen == [1, 2]

    def raising(step, total):
        raise Cancelled("user pressed stop")

    with pytest.raises(Cancelled, match="user pressed stop"):
        region_perturbation(model, x, x, 0, progress=raising)


def test_channel_summed_relevance_gives_same_curves(pixel_case):
    model, x = pixel_case
    relevance = torch.randn(x.shape, generator=torch.Generator().manual_seed(8)).double()
    full = region_perturbation(model, x, relevance, 0, patch_size=2, regions_per_step=2)
    summed = region_perturbation(model, x, relevance.sum(1), 0, patch_size=2, regions_per_step=2)
    assert torch.equal(full.morf, summed.morf) and torch.equal(full.lerf, summed.lerf)


def test_baselines():
    x = torch.arange(32, dtype=torch.float64).view(1, 2, 4, 4)
    mean = make_baseline(x, "mean")
    assert torch.allclose(mean[0, 0], torch.full((4, 4), 7.5, dtype=torch.float64))
    assert torch.allclose(mean[0, 1], torch.full((4, 4), 23.5, dtype=torch.float64))
    # a Gaussian blur of a constant image is the constant
    assert torch.allclose(make_baseline(torch.ones(1, 3, 5, 5), "blur"), torch.ones(1, 3, 5, 5))
    assert torch.equal(make_baseline(x, lambda t: t + 1), x + 1)
    assert torch.equal(make_baseline(x, torch.tensor(3.0)), torch.full_like(x, 3.0))


def test_mean_baseline_curve_ends_at_mean_image_score(pixel_case):
    model, x = pixel_case
    result = region_perturbation(model, x, x, 0, regions_per_step=5, baseline="mean")
    ends = model(x.mean((2, 3), keepdim=True).expand_as(x))[:, 0]
    assert torch.allclose(result.morf[:, -1], ends)
    assert torch.allclose(result.lerf[:, -1], ends)


# ---------------------------------------------------------------- class sensitivity


def test_class_sensitivity_cosine_and_correlation_hand_computed():
    generator = torch.Generator().manual_seed(7)
    weights = torch.randn(4, 6, generator=generator).double()
    x = torch.randn(3, 6, generator=generator).double()

    def explain(inputs, classes):
        return weights[classes] * inputs

    for name, centre in (("cosine", False), ("correlation", True)):
        result = class_sensitivity(explain, x, [0, 1, 2], [3, 3, 0], measure=name)
        for i, (t, o) in enumerate(zip([0, 1, 2], [3, 3, 0], strict=True)):
            a, b = (weights[t] * x[i]).numpy(), (weights[o] * x[i]).numpy()
            if centre:
                a, b = a - a.mean(), b - b.mean()
            expected = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
            assert result.similarity[i].item() == pytest.approx(expected)


def test_class_sensitivity_random_others_and_class_blind_map():
    x = torch.rand(50, 4)
    progress = []
    result = class_sensitivity(
        lambda inputs, classes: inputs * 2,
        x,
        3,
        num_classes=5,
        generator=torch.Generator().manual_seed(0),
        progress=lambda k, t: progress.append((k, t)),
    )
    assert torch.allclose(result.similarity, torch.ones(50))  # class-blind map: similarity 1
    assert (result.others != 3).all() and set(result.others.tolist()) == {0, 1, 2, 4}
    assert progress == [(1, 2), (2, 2)]


def test_random_other_classes_never_target():
    targets = torch.randint(0, 3, (200,), generator=torch.Generator().manual_seed(1))
    others = random_other_classes(targets, 3, torch.Generator().manual_seed(2))
    assert (others != targets).all() and ((others >= 0) & (others < 3)).all()


# ---------------------------------------------------------------- bad input


def test_bad_input_names_the_argument(pixel_case):
    model, x = pixel_case
    nan = x.clone()
    nan[0, 0, 0, 0] = float("nan")
    cases = [
        (lambda: region_perturbation(model, x, nan, 0), "relevance"),
        (lambda: region_perturbation(model, nan, x, 0), "inputs"),
        (lambda: region_perturbation(model, x, x[:, :, :2], 0), "relevance"),
        (lambda: region_perturbation(model, x, x, 5), "target"),
        (lambda: region_perturbation(model, x, x, 0, regions_per_step=1.5), "regions_per_step"),
        (lambda: region_perturbation(model, x, x, 0, patch_size=0), "patch_size"),
        (lambda: region_perturbation(model, x, x, 0, baseline="noise"), "baseline"),
        (lambda: relevance_mass_accuracy(x, torch.zeros(3, 4, 6)), "mask"),
        (lambda: pointing_game(x, torch.ones(3, 4, 5)), "mask"),
        (lambda: pointing_game(x, torch.ones(3, 4, 6), tolerance=-1), "tolerance"),
        (lambda: sparseness(torch.zeros(2, 3)), "relevance"),
        (lambda: conservation_error(x, torch.ones(3, 2), torch.ones(3, 3)), "output"),
        (lambda: class_sensitivity(lambda i, c: i, x, 0), "num_classes"),
        (lambda: class_sensitivity(lambda i, c: i, x, 0.5, 1), "targets"),
    ]
    for call, name in cases:
        with pytest.raises(EvaluationInputError, match=name):
            call()
    assert issubclass(EvaluationInputError, ValueError)
