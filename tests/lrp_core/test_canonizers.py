"""Canonizers rewrite a model without changing its output, and their removal restores it exactly.

Properties checked:
- merging an eval-mode batch norm ``bn(z) = (z - mean) / sqrt(var + eps) * gamma + beta`` into the
  linear layer before it leaves the model's output unchanged (the reference is the unmerged model,
  computed by torch's own batch norm) to 1e-6 relative;
- after ``remove()`` every ``state_dict`` tensor is bit-identical, the keys are the same in the same
  order, the parameter objects are the original ones and a bias that was ``None`` is ``None`` again.
"""

import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from lrp_core.canonizers import (
    AttributeCanonizer,
    CompositeCanonizer,
    MergeBatchNorm,
    NamedMergeBatchNorm,
    SequentialMergeBatchNorm,
)
from lrp_core.layer import Sum

from .model_state import (
    assert_restored,
    randomize_batch_norms,
    relative_error,
    snapshot,
    tensor_objects,
)

LINEAR_BATCH_NORM_CASES = {
    "linear": (lambda bias: nn.Linear(5, 4, bias=bias), nn.BatchNorm1d, (3, 5)),
    "conv1d": (lambda bias: nn.Conv1d(3, 4, 3, bias=bias), nn.BatchNorm1d, (2, 3, 7)),
    "conv2d": (lambda bias: nn.Conv2d(3, 4, 3, padding=1, bias=bias), nn.BatchNorm2d, (2, 3, 6, 6)),
    "conv3d": (lambda bias: nn.Conv3d(2, 4, 2, bias=bias), nn.BatchNorm3d, (2, 2, 4, 4, 4)),
    "conv2d_groups": (
        lambda bias: nn.Conv2d(4, 6, 3, groups=2, bias=bias),
        nn.BatchNorm2d,
        (2, 4, 5, 5),
    ),
    "conv_transpose1d": (
        lambda bias: nn.ConvTranspose1d(3, 4, 3, bias=bias),
        nn.BatchNorm1d,
        (2, 3, 5),
    ),
    "conv_transpose2d_groups": (
        lambda bias: nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2, bias=bias),
        nn.BatchNorm2d,
        (2, 4, 4, 4),
    ),
}


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("case", list(LINEAR_BATCH_NORM_CASES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_merge_keeps_output_and_removal_restores_bit_identically(case, bias, dtype):
    make_linear, make_batch_norm, input_shape = LINEAR_BATCH_NORM_CASES[case]
    torch.manual_seed(1)
    linear = make_linear(bias)
    channels = linear.out_features if isinstance(linear, nn.Linear) else linear.out_channels
    model = randomize_batch_norms(nn.Sequential(linear, make_batch_norm(channels), nn.ReLU())).to(
        dtype
    )
    x = torch.randn(input_shape, dtype=dtype)
    expected = model(x)
    before, objects = snapshot(model), tensor_objects(model)

    instances = SequentialMergeBatchNorm().apply(model)
    assert len(instances) == 1
    merged = model(x)
    assert relative_error(merged, expected) <= (1e-6 if dtype == torch.float32 else 1e-12)
    # the batch norm is now an identity: bn(z) == z exactly
    z = torch.randn((input_shape[0], channels) + tuple(merged.shape[2:]), dtype=dtype)
    assert torch.equal(model[1](z), z)
    assert linear.bias is not None

    for instance in reversed(instances):
        instance.remove()
    assert (linear.bias is None) is (not bias)
    assert_restored(model, before, objects)
    assert torch.equal(model(x), expected)


def test_merge_without_affine_batch_norm():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3, affine=False))
    with torch.no_grad():
        model[1].running_mean.normal_()
        model[1].running_var.uniform_(0.3, 2.0)
    model.eval()
    x = torch.randn(2, 2, 5, 5)
    expected, before, objects = model(x), snapshot(model), tensor_objects(model)
    instances = SequentialMergeBatchNorm().apply(model)
    assert relative_error(model(x), expected) <= 1e-6
    for instance in reversed(instances):
        instance.remove()
    assert_restored(model, before, objects)


def test_sequential_merge_finds_pairs_in_nested_sequentials_only():
    model = nn.Sequential(
        nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU()),
        nn.Sequential(nn.Conv2d(2, 2, 3), nn.ReLU(), nn.BatchNorm2d(2)),  # not consecutive
        nn.Flatten(),
        nn.Linear(2, 3),
        nn.BatchNorm1d(3),
    ).eval()
    instances = SequentialMergeBatchNorm().apply(model)
    merged = {id(instance.batch_norm) for instance in instances}
    assert merged == {id(model[0][1]), id(model[4])}
    for instance in reversed(instances):
        instance.remove()


def test_named_merge_with_shared_batch_norm_for_alternative_linears():
    # one batch norm applied after either of two linears (each feeds it on its own)
    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.left, self.right, self.norm = nn.Linear(3, 4), nn.Linear(3, 4), nn.BatchNorm1d(4)

        def forward(self, x):
            return self.norm(self.left(x)) - self.norm(self.right(x))

    torch.manual_seed(3)
    model = randomize_batch_norms(TwoHeads())
    x = torch.randn(5, 3)
    expected, before, objects = model(x), snapshot(model), tensor_objects(model)
    canonizer = NamedMergeBatchNorm([(("left", "right"), "norm")])
    instances = canonizer.apply(model)
    assert relative_error(model(x), expected) <= 1e-6
    for instance in reversed(instances):
        instance.remove()
    assert_restored(model, before, objects)
    assert isinstance(canonizer.copy(), NamedMergeBatchNorm) and canonizer.copy().name_map == [
        (("left", "right"), "norm")
    ]


def test_named_merge_unknown_name_raises_and_changes_nothing():
    model = randomize_batch_norms(nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)))
    before, objects = snapshot(model), tensor_objects(model)
    with pytest.raises(ValueError, match="no module named 'conv'"):
        NamedMergeBatchNorm([(("0",), "1"), (("conv",), "1")]).apply(model)
    assert_restored(model, before, objects)


def test_merge_errors_are_specific_and_leave_the_model_unchanged():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3, track_running_stats=False))
    with pytest.raises(ValueError, match="track_running_stats=False"):
        SequentialMergeBatchNorm().apply(model)
    with pytest.raises(ValueError, match="3 output channels but the batch norm has 4"):
        MergeBatchNorm().register(nn.Linear(2, 3), nn.BatchNorm1d(4))
    with pytest.raises(TypeError, match="only into linear layers"):
        MergeBatchNorm().register(nn.ReLU(), nn.BatchNorm1d(4))
    with pytest.raises(TypeError, match="expected a batch norm"):
        MergeBatchNorm().register(nn.Linear(2, 3), nn.LayerNorm(3))
    with pytest.raises(NotImplementedError, match="SequentialMergeBatchNorm"):
        MergeBatchNorm().apply(model)

    # the second pair reuses the first linear: rejected, and the first merge is undone
    shared = randomize_batch_norms(
        nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2), nn.BatchNorm1d(2))
    )
    before, objects = snapshot(shared), tensor_objects(shared)
    with pytest.raises(ValueError, match="appears in two merge pairs"):
        NamedMergeBatchNorm([(("0",), "1"), (("0",), "2")]).apply(shared)
    assert_restored(shared, before, objects)


def test_merge_warns_in_training_mode():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)).train()
    with pytest.warns(UserWarning, match="training mode"):
        instances = SequentialMergeBatchNorm().apply(model)
    for instance in instances:
        instance.remove()
        instance.remove()  # removing twice is harmless


def test_attribute_canonizer_sets_and_restores_exactly():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.act = nn.Conv1d(1, 1, 1), nn.ReLU()
            self.flag = "original"

        def forward(self, x):
            return self.act(self.conv(x)) + self.act(x)

    def summed_forward(self, x):
        return self.canonizer_sum(torch.stack([self.act(self.conv(x)), self.act(x)], dim=-1))

    model = nn.Sequential(Block(), Block())
    original_act, names_before = model[1].act, [name for name, _ in model.named_modules()]
    before, objects = snapshot(model), tensor_objects(model)
    x = torch.randn(2, 1, 4)
    expected = model(x)

    def attribute_map(name, module):
        if name != "1":
            return None
        return {
            "forward": summed_forward.__get__(module),
            "canonizer_sum": Sum(),
            "flag": "canonized",
            "act": nn.LeakyReLU(0.0),  # replaces a child module in place
        }

    instances = AttributeCanonizer(attribute_map).apply(model)
    assert len(instances) == 1
    assert model[1].flag == "canonized" and isinstance(model[1].canonizer_sum, Sum)
    assert "1.canonizer_sum" in dict(model.named_modules())
    torch.testing.assert_close(model(x), expected, rtol=1e-6, atol=0)

    instances[0].remove()
    assert "forward" not in vars(model[1]) and "canonizer_sum" not in model[1]._modules
    assert model[1].flag == "original" and model[1].act is original_act
    assert [name for name, _ in model.named_modules()] == names_before
    assert_restored(model, before, objects)


def test_attribute_canonizer_rolls_back_when_setting_fails():
    module = nn.Linear(2, 2)
    weight = module.weight
    canonizer = AttributeCanonizer()
    with pytest.raises(TypeError):
        # a plain tensor cannot replace a registered parameter
        canonizer.register(module, {"extra": 1, "weight": torch.zeros(2, 2)})
    assert module.weight is weight and not hasattr(module, "extra")
    with pytest.raises(TypeError, match="no attribute_map"):
        AttributeCanonizer().apply(module)
    with pytest.raises(TypeError, match="must be callable"):
        AttributeCanonizer(attribute_map=3)


def test_composite_canonizer_applies_in_order_and_removes_in_reverse():
    model = nn.Sequential(nn.Linear(2, 2))
    model.tag = "original"
    seen = []

    def tagger(tag):
        def attribute_map(name, module):
            if name == "":
                seen.append((tag, module.tag))
                return {"tag": tag}
            return None

        return AttributeCanonizer(attribute_map)

    composite = CompositeCanonizer([tagger("first"), tagger("second")])
    instances = composite.apply(model)
    # the second canonizer sees the first's rewrite and wins
    assert seen == [("first", "original"), ("second", "first")] and model.tag == "second"
    instances[1].remove()
    assert model.tag == "first"
    instances[0].remove()
    assert model.tag == "original"

    composite.apply(model)
    composite.remove()
    assert model.tag == "original"
    assert len(composite.copy().canonizers) == 2


def test_composite_canonizer_undoes_earlier_members_when_a_later_one_fails():
    model = randomize_batch_norms(nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)))
    before, objects = snapshot(model), tensor_objects(model)
    failing = NamedMergeBatchNorm([(("missing",), "1")])
    with pytest.raises(ValueError, match="missing"):
        CompositeCanonizer([SequentialMergeBatchNorm(), failing]).apply(model)
    assert_restored(model, before, objects)
    with pytest.raises(TypeError, match="must be a canonizer"):
        CompositeCanonizer([SequentialMergeBatchNorm(), "not a canonizer"])


def test_state_dict_restored_after_an_exception_inside_a_composite_context():
    core = pytest.importorskip("lrp_core.core")
    torch.manual_seed(4)
    model = randomize_batch_norms(nn.Sequential(nn.Conv2d(1, 2, 3, bias=False), nn.BatchNorm2d(2)))
    before, objects = snapshot(model), tensor_objects(model)
    composite = core.Composite(canonizers=[SequentialMergeBatchNorm()])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(RuntimeError), composite.context(model) as modified:
            assert modified[0].bias is not None  # merged inside the context
            modified(torch.randn(1, 5, 5, 5))  # wrong channel count: conv raises
    assert model[0].bias is None
    assert_restored(model, before, objects)


@settings(max_examples=25, deadline=None)
@given(
    dims=st.integers(1, 3),
    transpose=st.booleans(),
    bias=st.booleans(),
    groups=st.sampled_from([1, 2]),
    kernel=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_merging_any_convolution_keeps_output_and_restores(
    dims, transpose, bias, groups, kernel, seed
):
    """For every conv / transposed conv (1-3d, grouped or not, with or without bias) followed by a
    batch norm with random statistics: merged output = original output (float64, 1e-10 relative),
    and removal restores the state_dict bit-identically."""
    torch.manual_seed(seed)
    conv_type = getattr(nn, f"Conv{'Transpose' if transpose else ''}{dims}d")
    batch_norm_type = getattr(nn, f"BatchNorm{dims}d")
    model = nn.Sequential(conv_type(2 * groups, 2 * groups + 2, kernel, groups=groups, bias=bias))
    model.append(batch_norm_type(2 * groups + 2))
    model = randomize_batch_norms(model, seed).double()
    x = torch.randn((2, 2 * groups) + (4,) * dims, dtype=torch.float64)
    expected, before, objects = model(x), snapshot(model), tensor_objects(model)
    instances = SequentialMergeBatchNorm().apply(model)
    assert relative_error(model(x), expected) <= 1e-10
    for instance in reversed(instances):
        instance.remove()
    assert_restored(model, before, objects)
