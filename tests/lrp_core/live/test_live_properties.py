"""Property: on random small networks, after a random sequence of rule changes, the live re-run
equals a fresh ``Gradient`` attribution with an equivalent hand-built composite (to 1e-6, float64),
and the model ran forward exactly once."""

from __future__ import annotations

import copy
import warnings

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from lrp_core import rules
from lrp_core.attribution import Gradient
from lrp_core.composites import COMPOSITES, MixedComposite, NameMapComposite
from lrp_core.live import LiveExplanation

from .live_models import one_hot

LINEAR_RULES = [
    rules.Epsilon(0.01),
    rules.ZPlus(),
    rules.AlphaBeta(2.0, 1.0),
    rules.Gamma(0.3),
    rules.Flat(),
    rules.WSquare(),
    None,
]
ACTIVATION_RULES = [rules.Pass(), rules.ReLUDeconvNet(), rules.ReLUBetaSmooth(5.0), None]
COMPOSITE_NAMES = ["epsilon_plus", "epsilon_alpha2_beta1_flat", "excitation_backprop", None]


@st.composite
def networks(draw):
    widths = draw(st.lists(st.integers(2, 5), min_size=2, max_size=4))
    bias = draw(st.booleans())
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths, widths[1:], strict=False)):
        layers.append(nn.Linear(a, b, bias=bias))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    torch.manual_seed(draw(st.integers(0, 1000)))
    return nn.Sequential(*layers).double().eval(), widths


@settings(max_examples=20, deadline=None)
@given(
    data=networks(),
    composite=st.sampled_from(COMPOSITE_NAMES),
    changes=st.lists(st.tuples(st.integers(0, 10), st.integers(0, 10)), max_size=5),
)
def test_rerun_equals_fresh_attribution(data, composite, changes):
    model, widths = data
    twin = copy.deepcopy(model)
    x = torch.randn(3, widths[0], dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        live = LiveExplanation(model, x, composite)
    overrides: dict[str, object] = {}
    names = [n for n, _ in model.named_children()]
    for module_index, rule_index in changes:
        name = names[module_index % len(names)]
        pool = LINEAR_RULES if isinstance(model[int(name)], nn.Linear) else ACTIVATION_RULES
        rule = pool[rule_index % len(pool)]
        live.assign(rule, name=name)
        overrides[name] = rule
    targets = [0, widths[-1] - 1, 1 % widths[-1]]
    result = live.explain(target=targets)
    assert live.forward_count == 1
    live.close()

    from lrp_core.core import Hook

    members = []
    if overrides:
        members.append(
            NameMapComposite([((n,), Hook() if r is None else r) for n, r in overrides.items()])
        )
    if composite is not None:
        members.append(COMPOSITES[composite]())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, reference = Gradient(twin, MixedComposite(members))(x, one_hot(targets, widths[-1]))
    assert torch.allclose(result.relevance, reference, atol=1e-6, rtol=1e-6)
