"""Parity with Zennit 1.0 for the names and behaviours a port relies on (issue 12).

Each test runs the same code against lrp_core and the reference library (a black-box oracle) and
compares what is observable: return values, call sequences, exception types, model outputs.
"""

from __future__ import annotations

import copy
import itertools
import random

import numpy as np
import pytest
import torch
from torch import nn

import lrp_core
import lrp_core.attribution
import lrp_core.canonizers
import lrp_core.cmap
import lrp_core.composites
import lrp_core.core
import lrp_core.image

from .zennit_oracle import load

zennit = load()
LIBRARIES = pytest.mark.parametrize("lib", [lrp_core, zennit], ids=["lrp_core", "zennit"])


# ---------------------------------------------------------------- core


@pytest.mark.parametrize("zero_params", [None, "bias", ["bias", "weight"], "", ()])
@pytest.mark.parametrize("name", ["bias", "weight", "b", "ias", "x"])
def test_zero_wrap(zero_params, name):
    """Same zeroing decision (incl. substring matching for a str) and result as Zennit."""
    param = torch.arange(1.0, 4.0, dtype=torch.float64)

    def modifier(tensor, param_name):
        return tensor * 2 + len(param_name)

    ours = lrp_core.core.zero_wrap(zero_params)(modifier)
    theirs = zennit.core.zero_wrap(zero_params)(modifier)
    torch.testing.assert_close(ours(param, name), theirs(param, name), rtol=0, atol=0)
    assert ours.__wrapped__ is modifier and ours.__name__ == theirs.__name__


UNCOMPRESS_CASES = [
    ([1, 2, 3, 4], [True, False, True, False], None),
    ([1, 2, 3], [True] * 5, [10, 20]),
    ([1, 2], [False, False, False], []),
    ([1, 2], [True], [9, 8, 7]),
    ([1, 2, 3], [False, True], [9]),
    ([], [], []),
    ([1, 2, 3], [1, 0, 1], ["a", "b"]),
]


@pytest.mark.parametrize(("data", "selector", "compressed"), UNCOMPRESS_CASES)
def test_uncompress(data, selector, compressed):
    """uncompress inverts itertools.compress; the same values at the same edge cases."""
    if compressed is None:
        compressed = [value * 10 for value in itertools.compress(data, selector)]
    ours = lrp_core.core.uncompress(data, selector, compressed)
    theirs = zennit.core.uncompress(data, selector, compressed)
    assert type(ours) is type(theirs)
    assert list(ours) == list(theirs)


def test_identity_function():
    """Identity.apply returns a tuple of new tensors on the same storage, with a grad_fn; the
    gradient passes unchanged."""
    results = []
    for lib in (lrp_core, zennit):
        x = torch.arange(3.0, dtype=torch.float64, requires_grad=True)
        out = lib.core.Identity.apply(x, x * 2)
        assert isinstance(out, tuple) and len(out) == 2
        assert out[0] is not x and out[0].data_ptr() == x.data_ptr()
        assert out[0].grad_fn is not None
        (out[0].sum() + 3 * out[1].sum()).backward()
        results.append((x.grad, lib.core.Identity.apply()))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=0, atol=0)
    assert results[0][1] == results[1][1] == ()


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)).double().eval()


@LIBRARIES
def test_composite_context_and_hook_refs(lib):
    """CompositeContext registers on entry, yields the module, removes on exit (also on error,
    which propagates); hook_refs holds the registered hooks. Same counts in both libraries."""
    model = _model()
    composite = lib.composites.EpsilonPlus()
    context = composite.context(model)
    assert isinstance(context, lib.core.CompositeContext)
    assert (context.module, context.composite) == (model, composite)
    with context as modified:
        assert modified is model and len(composite.hook_refs) == 3
        assert all(isinstance(hook, lib.core.Hook) for hook in composite.hook_refs)
    assert len(composite.hook_refs) == 0
    manual = lib.core.CompositeContext(model, composite)
    with pytest.raises(KeyError), manual:
        assert len(composite.hook_refs) == 3
        raise KeyError("inside")
    assert len(composite.hook_refs) == 0
    assert manual.__exit__(None, None, None) is False


def test_hook_refs_counts_match():
    counts = []
    for lib in (lrp_core, zennit):
        composite = lib.composites.EpsilonGammaBox(low=-3.0, high=3.0)
        with composite.context(_model()):
            counts.append(sorted(type(hook).__name__ for hook in composite.hook_refs))
    assert counts[0] == counts[1]


def _hooked_linear_relevance(lib, hook):
    torch.manual_seed(0)
    layer = nn.Linear(3, 2).double()
    x = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    handles = hook.register(layer)
    try:
        input = x.clone().requires_grad_()
        output = layer(input)
        (relevance,) = torch.autograd.grad(output, input, torch.ones_like(output))
    finally:
        handles.remove()
    return layer, x, relevance


@pytest.mark.parametrize("stabilizer", [1e-6, 0.5])
def test_basic_hook_stabilizer(stabilizer):
    """BasicHook(stabilizer=ε): R_in = x ⊙ Wᵀ(R / stabilize(z, ε)) (float64 formula). The
    default agrees with Zennit; Zennit 1.0 accepts but ignores other values (a documented
    difference: lrp_core applies them)."""
    layer, x, ours = _hooked_linear_relevance(
        lrp_core, lrp_core.core.BasicHook(stabilizer=stabilizer)
    )
    _, _, theirs = _hooked_linear_relevance(zennit, zennit.core.BasicHook(stabilizer=stabilizer))
    z = (x @ layer.weight.T + layer.bias).detach()
    expected = x * ((1.0 / (z + stabilizer * torch.where(z >= 0, 1.0, -1.0))) @ layer.weight)
    torch.testing.assert_close(ours, expected.detach(), rtol=1e-12, atol=1e-12)
    if stabilizer == 1e-6:
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    else:
        assert not torch.allclose(theirs, expected)


def test_beta_smooth_accepts_zero_params_like_zennit():
    model, x = _model(), torch.randn(2, 4, dtype=torch.float64)
    results = []
    for lib in (lrp_core, zennit):
        with lib.attribution.Gradient(
            model, lib.composites.BetaSmooth(2.0, None, "bias")
        ) as attributor:
            results.append(attributor(x, torch.eye(2, dtype=torch.float64)[[0, 1]])[1])
    torch.testing.assert_close(results[0], results[1], rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- attribution helpers


def test_identity_and_constant():
    payload = [1, 2]
    for lib in (lrp_core, zennit):
        assert lib.attribution.identity(payload) is payload
        function = lib.attribution.constant(payload)
        assert function() is payload and function(1, 2, key=3) is payload


def test_constant_attr_output_gives_zennit_relevance():
    """A callable attr_output built with constant() gives the same gradient relevance."""
    model, x = _model(), torch.randn(2, 4, dtype=torch.float64)
    seed = torch.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=torch.float64)
    results = []
    for lib in (lrp_core, zennit):
        with lib.attribution.Gradient(model, attr_output=lib.attribution.constant(seed)) as attr:
            results.append(attr(x))
    for ours, theirs in zip(results[0], results[1], strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- Occlusion


def _occlusion_calls(lib, window, **kwargs):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 2)).double().eval()
    calls = []
    model.register_forward_hook(lambda module, args, out: calls.append(args[0].detach().clone()))
    x = torch.randn(1, 3, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    score = lambda out: out * torch.tensor([[1.0, -1.0]], dtype=out.dtype)  # noqa: E731
    with lib.attribution.Occlusion(
        model, attr_output=score, window=window, stride=window, **kwargs
    ) as attributor:
        output, relevance = attributor(x)
    return x, calls, output, relevance


def _zero_window(input, mask):
    return input * ~mask


@pytest.mark.parametrize("occlusion", ["default", "zero-window"])
@pytest.mark.parametrize("window", [(1, 3, 2, 2), (1, 1, 2, 2), (1, 2, 1, 1), (1, 1, 1, 2)])
def test_occlusion_forward_sequence_matches_zennit(window, occlusion):
    """batch_size=1: the same forward calls with the same inputs in the same order (occluded
    inputs first, unoccluded last), the same output and relevance. With a window covering the
    whole input and the window zeroed, exactly two calls: zeros first, then the input."""
    kwargs = {"occlusion_fn": _zero_window} if occlusion == "zero-window" else {}
    x, ours, out, rel = _occlusion_calls(lrp_core, window, batch_size=1, **kwargs)
    _, theirs, their_out, their_rel = _occlusion_calls(zennit, window, **kwargs)
    if occlusion == "zero-window" and window == (1, 3, 2, 2):
        assert len(ours) == 2 and not ours[0].any()
    assert len(ours) == len(theirs)
    for our_input, their_input in zip(ours, theirs, strict=True):
        torch.testing.assert_close(our_input, their_input, rtol=0, atol=0)
    torch.testing.assert_close(ours[-1], x, rtol=0, atol=0)
    torch.testing.assert_close(out, their_out, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(rel, their_rel, rtol=1e-12, atol=1e-12)


def test_occlusion_batching_keeps_order():
    """A larger batch_size concatenates consecutive occluded inputs; the unoccluded one is last."""
    x, batched, _, rel = _occlusion_calls(lrp_core, (1, 1, 2, 2), batch_size=2)
    _, single, _, single_rel = _occlusion_calls(lrp_core, (1, 1, 2, 2), batch_size=1)
    assert [len(call) for call in batched] == [2, 1, 1]
    torch.testing.assert_close(torch.cat(batched[:-1]), torch.cat(single[:-1]), rtol=0, atol=0)
    torch.testing.assert_close(batched[-1], x, rtol=0, atol=0)
    torch.testing.assert_close(rel, single_rel, rtol=0, atol=0)


@pytest.mark.parametrize("fill", ["zeros", "mean"])
def test_disjunct_windows_sum_back_to_input(fill):
    """occlude_independent with disjunct windows (window == stride) that tile the input: the
    occluded inputs, less the fill outside each window, sum back to the input (exactly for the
    zero fill), with every occluded input identical to Zennit's."""
    fill_fn = torch.zeros_like if fill == "zeros" else lambda t: torch.full_like(t, t.mean().item())
    runs = []
    for lib in (lrp_core, zennit):
        occlusion_fn = lambda input, mask, lib=lib: lib.attribution.occlude_independent(  # noqa: E731
            input, mask, fill_fn=fill_fn
        )
        kwargs = {"batch_size": 1} if lib is lrp_core else {}
        x, calls, _, _ = _occlusion_calls(lib, (1, 1, 1, 2), occlusion_fn=occlusion_fn, **kwargs)
        occluded = calls[:-1]
        total = sum(part - fill_fn(x) for part in occluded) + fill_fn(x)
        tolerance = 0.0 if fill == "zeros" else 1e-15
        torch.testing.assert_close(total, x, rtol=0, atol=tolerance)
        runs.append(occluded)
    assert len(runs[0]) == len(runs[1]) == 6
    for ours, theirs in zip(*runs, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


# ---------------------------------------------------------------- canonizers


@LIBRARIES
def test_canonizer_base_apply_returns_list(lib):
    """A cooperative subclass can extend super().apply(...)."""

    class Counting(lib.canonizers.Canonizer):
        def apply(self, root_module):
            instances = super().apply(root_module)
            instances += [self]
            return instances

        def register(self):
            pass

        def remove(self):
            pass

    canonizer = Counting()
    assert canonizer.apply(nn.Linear(1, 1)) == [canonizer]


def _bn_model():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, bias=False),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 2 * 2, 3),
    ).double()
    with torch.no_grad():
        for norm in (model[1], model[4]):
            norm.running_mean.uniform_(-1.0, 1.0)
            norm.running_var.uniform_(0.2, 3.0)
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.5, 0.5)
    return model.eval()


def _epsilon_relevance(lib, model, x):
    composite = lib.composites.EpsilonPlus(canonizers=[lib.canonizers.SequentialMergeBatchNorm()])
    with composite.context(model) as modified:
        input = x.clone().requires_grad_()
        output = modified(input)
        (relevance,) = torch.autograd.grad(output, input, torch.eye(3, dtype=x.dtype)[[0, 2]])
    return output.detach(), relevance


def test_merge_after_zennit_merge_is_correct():
    """Zennit's MergeBatchNorm (applied and removed) leaves instance attributes shadowing the
    batch norm buffers; lrp_core's merge afterwards still gives the original output and the
    EpsilonPlus relevance of a fresh model (and Zennit's, in float64), and restores every object."""
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    fresh = _bn_model()
    expected_output, expected = _epsilon_relevance(lrp_core, copy.deepcopy(fresh), x)
    _, zennit_relevance = _epsilon_relevance(zennit, copy.deepcopy(fresh), x)
    model = copy.deepcopy(fresh)
    for instance in zennit.canonizers.SequentialMergeBatchNorm().apply(model):
        instance.remove()
    assert "running_mean" in model[1].__dict__  # the state this test is about
    before = {name: dict(module.__dict__) for name, module in model.named_modules()}
    output, relevance = _epsilon_relevance(lrp_core, model, x)
    torch.testing.assert_close(output, expected_output, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(relevance, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(relevance, zennit_relevance, rtol=1e-10, atol=1e-12)
    for name, module in model.named_modules():
        assert module.__dict__.keys() == before[name].keys()
        for key in ("weight", "bias", "running_mean", "running_var", "_parameters", "_buffers"):
            if key in before[name]:
                assert module.__dict__[key] is before[name][key] or (
                    module.__dict__[key] == before[name][key]
                )


def test_merge_while_zennit_merge_is_applied_is_refused():
    """Merging on top of an active Zennit merge is refused and leaves the model as it was."""
    model = _bn_model()
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    expected = model(x)
    instances = zennit.canonizers.SequentialMergeBatchNorm().apply(model)
    try:
        with pytest.raises(ValueError, match="still applied; remove it first"):
            lrp_core.canonizers.SequentialMergeBatchNorm().apply(model)
        assert not model[0]._forward_hooks and not model[1]._forward_hooks
    finally:
        for instance in instances:
            instance.remove()
    torch.testing.assert_close(model(x), expected, rtol=0, atol=0)


# ---------------------------------------------------------------- cmap


def _random_source(rng: random.Random) -> str:
    """Colour map sources near the language: mostly valid structure, often broken on purpose."""

    def digits(count):
        return "".join(rng.choice("0123456789abcdefABCDEF") for _ in range(count))

    nodes = []
    for _ in range(rng.randint(0, 5)):
        index = ""
        if rng.random() < 0.5:
            index = digits(rng.choice([1, 1, 2, 2, 3])) + rng.choice([":", ":", " :", ": ", ""])
        nodes.append(index + digits(rng.choice([3, 3, 6, 6, 1, 2, 4, 5, 7])))
    source = rng.choice([",", ", ", " ,", "\n,", ",,"]).join(nodes)
    source += rng.choice(["", "", ",", ", ", ",,", "#"])
    if rng.random() < 0.1:
        source = source.replace(rng.choice("0123456789abcdef"), rng.choice("#g;x "))
    return source


CMAP_SOURCES = [
    "000,fff", "#000,#fff", "000", "0:000", "80:000,80:fff", " 000 , fff ", "000,,fff", "000,",
    "", ",", "000,fff,", "000,fff,,", ",000,fff", "8:fff,80:000", "9:000,9a:fff", "80 : fff,000",
    "0000,fff", "1ff:000,fff", "ff:000,fff", "000,80:fff,40:000", "000,40:fff,40:f00,fff",
    "FFF,000", "afc,a37640", "000 fff,000", "80:,fff", "0x80:fff,000", "000;fff",
]  # fmt: skip


def _compile(lib, source):
    try:
        return lib.cmap.ColorMap(source).palette(), None
    except Exception as error:  # noqa: BLE001 (the exception type is what is compared)
        return None, error


def test_cmap_language_matches_zennit():
    """The same sources accepted (with identical palettes) and rejected (with an exception of
    Zennit's type), over hand-picked edge cases and 3000 generated sources."""
    rng = random.Random(0)
    sources = CMAP_SOURCES + [_random_source(rng) for _ in range(3000)]
    accepted = 0
    for source in sources:
        ours, our_error = _compile(lrp_core, source)
        theirs, their_error = _compile(zennit, source)
        assert (our_error is None) == (their_error is None), source
        if their_error is None:
            accepted += 1
            np.testing.assert_array_equal(ours, theirs, err_msg=source)
        else:
            assert isinstance(our_error, type(their_error)), source
    assert 50 < accepted < len(sources) - 50  # both outcomes are well covered


@pytest.mark.parametrize(
    "source", ["000,fff", "coldnhot", "france", "f00,3:0f0,00f", "80:000,80:fff", "10:f00,e0:00f"]
)
def test_cmap_call_matches_zennit(source):
    """ColorMap(values): the same colours for values inside and outside [0, 1]."""
    source = lrp_core.cmap.BUILTIN_SOURCES.get(source, source)
    values = np.linspace(-0.2, 1.2, 301).reshape(7, 43)
    ours = lrp_core.cmap.ColorMap(source)(values)
    theirs = zennit.cmap.ColorMap(source)(values)
    assert ours.shape == theirs.shape == (7, 43, 3)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-14)


@pytest.mark.parametrize("source", [5, None, b"000,fff"])
def test_cmap_non_string_source_raises_type_error(source):
    for lib in (lrp_core, zennit):
        with pytest.raises(TypeError):
            lib.cmap.ColorMap(source)


@LIBRARIES
def test_cmap_source_reassignment_recompiles(lib):
    colour_map = lib.cmap.ColorMap("000,fff")
    colour_map.source = "f00,00f"
    assert colour_map.source == "f00,00f"
    np.testing.assert_array_equal(colour_map.palette()[[0, 255]], [[255, 0, 0], [0, 0, 255]])
    with pytest.raises(RuntimeError):
        colour_map.source = "zz"
    assert colour_map.source == "f00,00f"  # a bad source changes nothing
    np.testing.assert_array_equal(colour_map.palette()[0], [255, 0, 0])


@LIBRARIES
def test_lazy_cache_delete_and_replace(lib):
    cache = lib.cmap.LazyColorMapCache({"a": "000,fff"})
    built = cache["a"]
    cache["a"] = "f00,00f"  # replacing an already compiled entry recompiles the same object
    assert cache["a"] is built and built.source == "f00,00f"
    with pytest.raises(RuntimeError):
        cache["a"] = "zz"
    assert cache["a"].source == "f00,00f"
    cache["lazy"] = "not a source"  # new entries are compiled on first use
    with pytest.raises(RuntimeError):
        cache["lazy"]
    del cache["a"]
    assert "a" not in cache and len(cache) == 1
    with pytest.raises(KeyError):
        cache["a"]
    with pytest.raises(KeyError):
        del cache["missing"]


@pytest.mark.parametrize("cmap", ["coldnhot", "bwr", "fff,000", "0:f00,80:000,fff", "nope", 5])
def test_get_cmap(cmap):
    """Built-in names resolve to the registry's map, sources compile, bad input raises alike."""
    ours, our_error = _get_cmap(lrp_core, cmap)
    theirs, their_error = _get_cmap(zennit, cmap)
    if their_error is not None:
        assert isinstance(our_error, type(their_error))
        return
    np.testing.assert_array_equal(ours.palette(), theirs.palette())
    assert ours.source == theirs.source
    if isinstance(cmap, str) and cmap in lrp_core.image.CMAPS:
        assert ours is lrp_core.image.CMAPS[cmap]


def _get_cmap(lib, cmap):
    try:
        return lib.image.get_cmap(cmap), None
    except Exception as error:  # noqa: BLE001 (the exception type is what is compared)
        return None, error


def test_cmap_tokens_and_nodes():
    """CMapToken(type, value, pos) and ColorNode(index, value) are the same named tuples."""
    for name, args in (("CMapToken", ("index", "80", 0)), ("ColorNode", (128, np.zeros(3)))):
        ours = getattr(lrp_core.cmap, name)(*args)
        theirs = getattr(zennit.cmap, name)(*args)
        assert ours._fields == theirs._fields and tuple(ours)[0] == tuple(theirs)[0]
    tokens = lrp_core.cmap.tokenize("80:fff, 000000")
    assert [token.type for token in tokens] == [
        "index", "adsep", "shortcolor", "sep", "whitespace", "longcolor"
    ]  # fmt: skip
    assert [token.pos for token in tokens] == [0, 2, 3, 6, 7, 8]


# ---------------------------------------------------------------- float32 against the float64 truth


def _deep_model(depth: int = 8, width: int = 8) -> nn.Sequential:
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for index in range(depth):
        layers += [nn.Conv2d(3 if index == 0 else width, width, 3, padding=1)]
        layers += [nn.BatchNorm2d(width), nn.ReLU()]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10)]
    model = nn.Sequential(*layers).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.8, 1.2)
                module.bias.uniform_(-0.1, 0.1)
    return model


def _box_relevance(lib, model, x, dtype):
    model = copy.deepcopy(model).to(dtype)
    composite = lib.composites.EpsilonGammaBox(
        low=-3.0, high=3.0, canonizers=[lib.canonizers.SequentialMergeBatchNorm()]
    )
    with composite.context(model) as modified:
        input = x.to(dtype).clone().requires_grad_()
        output = modified(input)
        seed = torch.eye(10, dtype=dtype)[[3, 7]]
        (relevance,) = torch.autograd.grad(output, input, seed)
    return relevance.double()


def test_float32_relevance_against_zennit_float64():
    """On a deep CNN with merged batch norms, lrp_core in float32 is within 2e-6 (relative to the
    largest relevance) of the reference run in float64, the exact result; in float64 the two
    agree to 1e-12."""
    model = _deep_model()
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    truth = _box_relevance(zennit, model, x, torch.float64)
    scale = truth.abs().max()
    ours32 = _box_relevance(lrp_core, model, x, torch.float32)
    ours64 = _box_relevance(lrp_core, model, x, torch.float64)
    torch.testing.assert_close(ours32 / scale, truth / scale, rtol=0, atol=2e-6)
    torch.testing.assert_close(ours64 / scale, truth / scale, rtol=0, atol=1e-12)
