"""What the tutorial notebooks claim in their text, checked in the kernel that ran them.

Each notebook runs once, headlessly, with *check cells* inserted after the cell whose source
contains an anchor string: a check reads the notebook's variables (widgets included) and asserts
the claim, against a reference computed here independently where there is a formula. A failing
check raises ``CellExecutionError`` with the assertion message; a missing anchor fails the test
(the notebook changed: update its checks).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
TIMEOUT_S = 120

# (anchor: a string of the cell the check follows, check source run in the same kernel)
CUSTOM_RULES = [
    (
        "without_tanh = input_gradient(",
        """
# g_x = W1ᵀ (tanh'(W1 x + b1) ⊙ W2ᵀ 1); PassThrough skips tanh': g_x = W1ᵀ W2ᵀ 1
W1, b1, W2 = net[0].weight.detach(), net[0].bias.detach(), net[2].weight.detach()
xd = x.detach()
slope = 1 - torch.tanh(xd @ W1.T + b1) ** 2
assert torch.allclose(kept, (W2.sum(0) * slope) @ W1, atol=1e-6)
assert torch.allclose(passed, (W2.sum(0) @ W1).expand_as(passed), atol=1e-6)
assert torch.allclose(passed, without_tanh) and not torch.allclose(passed, plain)
from lrp_core.rules import Pass
assert torch.allclose(input_gradient(net, x, Pass(), net[1]), passed)
""",
    ),
    (
        "hook = GradTimesInput()",
        """
# R_x = x ⊙ Wᵀ 1 for the output weighting 1
W = linear.weight.detach()
assert torch.allclose(hooked, torch.stack([x.detach()[n] * W.sum(0) for n in range(2)]))
assert hook.stored_tensors == {}
assert not linear._forward_hooks and not linear._forward_pre_hooks


class SeesGradOutput(Hook):
    seen = None

    def backward(self, module, grad_input, grad_output):
        SeesGradOutput.seen = self.stored_tensors.get("grad_output")


probe_hook = SeesGradOutput()
probe_handles = probe_hook.register(linear)
probe_seed = torch.randn(2, 3)
torch.autograd.grad(linear(x), x, probe_seed)
probe_handles.remove()
assert torch.equal(SeesGradOutput.seen[0], probe_seed)
""",
    ),
    (
        "twin = template.copy()",
        """
assert type(twin) is GradTimesShiftedInput and twin is not template and twin.reference == 0.5
""",
    ),
    (
        "composite = LayerMapComposite(",
        """
# Both Linear layers get R = (x − 0.5) ⊙ Wᵀ g and the ReLU passes g unchanged:
# R_x = (x − 0.5) ⊙ W1ᵀ[(h − 0.5) ⊙ W2[0]], h = relu(W1 x + b1)
W1, b1, W2 = (mlp[0].weight.detach(), mlp[0].bias.detach(), mlp[2].weight.detach())
xd = x.detach()
h = torch.relu(xd @ W1.T + b1)
expected = (xd - 0.5) * (((h - 0.5) * W2[0]) @ W1)
assert torch.allclose(relevance, expected, atol=1e-6)
assert len(copies) == 2 and all(c.reference == 0.5 and c is not template for c in copies)
assert template.stored_tensors == {}
assert not any(m._forward_hooks or m._forward_pre_hooks for m in mlp.modules())
""",
    ),
    (
        "hooked = backward_relevance(lrp_zero",
        """
# R_i = Σ_j x_i w_ij R_j / z_j, by explicit loops in float64
expected = torch.zeros_like(hooked)
for n in range(xd.shape[0]):
    for i in range(xd.shape[1]):
        expected[n, i] = sum(
            xd[n, i] * w[j, i] * relevance_out[n, j] / z[n, j] for j in range(w.shape[0])
        )
assert torch.allclose(hooked, expected, rtol=0, atol=1e-12)
lrp_zero_result = hooked.clone()
""",
    ),
    (
        "formula {(relevance_out * (z - b) / z).sum():.4f}",
        """
# Σ_i R_i = Σ_j R_j (z_j − b_j) / z_j, which is not Σ_j R_j
total = lrp_zero_result.sum()
assert torch.isclose(total, (relevance_out * (z - b) / z).sum(), rtol=1e-10)
assert not torch.isclose(total, relevance_out.sum(), rtol=1e-2)
# BasicHook() = LRP-ε: R_i = x_i Σ_j w_ij R_j / (z_j + 1e-6 sign(z_j)), sign(0) = +1
z_eps = z + 1e-6 * torch.where(z >= 0, 1.0, -1.0)
default_hook = backward_relevance(BasicHook(), layer, x, relevance_out)
assert torch.allclose(default_hook, xd * ((relevance_out / z_eps) @ w), rtol=1e-10, atol=1e-12)
""",
    ),
    (
        "rule = PositiveWeights(epsilon=0.0)",
        """
assert bool((w > 0).any(dim=1).all())
wp = w.clamp(min=0)
zp = xp @ wp.T
expected = torch.stack([
    torch.stack([sum(xp[n, i] * wp[j, i] * relevance_out[n, j] / zp[n, j] for j in range(3))
                 for i in range(5)])
    for n in range(4)
])
assert torch.allclose(hooked, expected, rtol=0, atol=1e-12)
assert bool((hooked >= 0).all())
assert torch.isclose(hooked.sum(), relevance_out.sum(), rtol=1e-12)
copied = PositiveWeights(epsilon=0.25).copy()
assert type(copied) is PositiveWeights and copied.hyperparameters() == {"epsilon": 0.25}
""",
    ),
    (
        "lrp_zero_no_bias = BasicHook(",
        """
assert torch.allclose(a, backward_relevance(PositiveWeights(), layer, x_positive, relevance_out))
# LRP-0 without bias: z_j = Σ_i x_i w_ij (stabilised by 1e-6), R_i = x_i Σ_j w_ij R_j / z_j
z0 = xd @ w.T
z0 = z0 + 1e-6 * torch.where(z0 >= 0, 1.0, -1.0)
assert torch.allclose(c, xd * ((relevance_out / z0) @ w), rtol=1e-10, atol=1e-12)
assert torch.isclose(c.sum(), relevance_out.sum(), rtol=1e-4)
# param_keys listing a parameter the module lacks: an error with require_params=True (default)
from lrp_core.core import MissingParameterError
strict = BasicHook(param_modifiers=[ParamMod(lambda p, _: p, param_keys=["weight", "gamma"])])
try:
    backward_relevance(strict, layer, x, relevance_out)
    raise AssertionError("a missing parameter listed in param_keys did not raise")
except MissingParameterError as error:
    assert "gamma" in str(error)
assert not layer._forward_hooks  # removed despite the error
lenient = ParamMod(lambda p, _: p, param_keys=["weight", "gamma"], require_params=False)
backward_relevance(BasicHook(param_modifiers=[lenient]), layer, x, relevance_out)
""",
    ),
    (
        'register_rule("PositiveWeights", PositiveWeights)',
        """
from lrp_core.live import RULES
assert RULES["PositiveWeights"] is PositiveWeights
assert explorer.catalog["PositiveWeights"] == {"params": {"epsilon": 1e-6}}
# the catalog is read when the widget is created: a rule registered later is not in it
from lrp_core.live import unregister_rule
register_rule("LateRule", PositiveWeights)
try:
    assert "LateRule" not in explorer.catalog
finally:
    unregister_rule("LateRule")
relus = [n for n, m in model.named_modules() if isinstance(m, nn.ReLU)]
assert relus and all(explorer.rules[n]["rule"] == "Pass" for n in relus)
""",
    ),
    (
        'explorer.assign("PositiveWeights", name=convolutions, epsilon=1e-6)',
        """
for name in convolutions:
    state = explorer.rules[name]
    assert state["rule"] == "PositiveWeights" and state["origin"] == "override", state
    assert state["params"] == {"epsilon": 1e-6}
# the composite's ZPlus gives these layers (and only these) to the health panel as losing
assert losing_before == convolutions, losing_before
assert losing_after == [], losing_after
entry = {e["name"]: e for e in explorer.health}["head.0"]
pairs = zip(entry["entering"], entry["leaving"])
assert all(abs(i - o) <= 1e-5 * max(abs(i), 1e-12) for i, o in pairs), entry
""",
    ),
    (
        'explorer.assign("ZPlus", name=convolutions, zero_params="bias")',
        """
assert torch.allclose(ours, builtin, atol=1e-6)
assert explorer.rules["head.0"]["rule"] == "PositiveWeights"
""",
    ),
]

CUSTOM_RULES_COMPARE = [
    (
        "compare = Compare(",
        """
assert compare.column_names == ["EpsilonPlusFlat", "with PositiveWeights", "Gradient"]
assert compare.status == "ready", compare.error
column = compare.columns[1]
assert {(o["layer"], o["rule"]) for o in column["overrides"]} == {
    (name, "PositiveWeights") for name in convolutions
}, column["overrides"]
from lrp_core.core import HookConflictError
try:  # a second widget on the same model is refused while Compare holds it
    Explorer(model, images)
    raise AssertionError("a second widget could hook the model")
except HookConflictError:
    pass
assert compare.status == "ready"
try:  # the Explorer let go of the model before Compare hooked it
    explorer.live.explain()
    raise AssertionError("the Explorer's live explanation is still open")
except RuntimeError as error:
    assert "closed" in str(error)
""",
    ),
    (
        "totals = {name: compare.relevance(name)",
        """
import json
assert totals["with PositiveWeights"].mean() > totals["EpsilonPlusFlat"].mean()
# the two LRP columns differ only in the four convolutions' rules
plain_config = json.loads(compare.column_config("EpsilonPlusFlat"))
ours_config = json.loads(compare.column_config("with PositiveWeights"))
assert plain_config["composite"] == ours_config["composite"] and plain_config["overrides"] == []
assert sorted(o["name"] for o in ours_config["overrides"]) == sorted(convolutions)
assert {o["rule"] for o in ours_config["overrides"]} == {"PositiveWeights"}
""",
    ),
]

MEANS = """
def lrp_and_gradient(score):
    table = summary(score)
    gradient = table.pop("Gradient")
    return table, gradient
"""

COMPARING_RULES = [
    (
        "images, labels, masks = make_batch(8, seed=0)",
        """
import torch
assert round(float(masks.float().mean()), 2) == 0.13
""",
    ),
    (
        "compare = Compare(",
        """
assert compare.column_names == list(configs)
assert compare.live.forward_count == 1 and compare.compute_count == len(configs)
assert compare.status == "ready", compare.error
overrides = compare.columns[3]["overrides"]
assert [(o["rule"], o.get("type"), o.get("within")) for o in overrides] == [
    ("Gamma", "Conv2d", "block")
], overrides
assert not torch.allclose(compare.relevance("EpsilonPlusFlat"),
                          compare.relevance("tuned (Gamma in block)"))
# "the gradient's values are some fifty times larger than the LRP relevance"
largest = {n: float(compare.relevance(n).sum(dim=1).abs().max()) for n in compare.column_names}
gradient_max = largest.pop("Gradient")
assert all(20 < gradient_max / value < 120 for value in largest.values()), (gradient_max, largest)
totals = compare.relevance("EpsilonPlusFlat").sum(dim=(1, 2, 3))
assert ((totals > 0.7) & (totals < 1.3)).all(), totals  # "sums to about 1 per image"
assert compare.normalization == "cell"
""",
    ),
    (
        'show("relevance_mass", "pointing_game", "sparseness")',
        MEANS
        + """
# relevance mass = Σ max(r, 0) M / Σ max(r, 0), recomputed here for every column
for name in compare.column_names:
    r = compare.relevance(name).sum(dim=1).double()
    positive = r.clamp(min=0)
    expected = (positive * masks).sum(dim=(1, 2)) / positive.sum(dim=(1, 2))
    column_id = str(compare.columns[compare.column_names.index(name)]["id"])
    assert np.allclose(compare.scores["relevance_mass"][column_id], expected.numpy(), atol=1e-5)
    # pointing game: is the first maximum of r (row-major) on the mask?
    hits = [float(masks[n].flatten()[r[n].flatten().argmax()]) for n in range(len(r))]
    assert compare.scores["pointing_game"][column_id] == hits
    # sparseness: Gini of |R| over all elements, Σ_i (2i − n − 1) x_(i) / (n Σ x), x sorted
    x_sorted = compare.relevance(name).abs().double().flatten(1).sort(dim=1).values
    count = x_sorted.shape[1]
    i = torch.arange(1, count + 1, dtype=torch.float64)
    gini = ((2 * i - count - 1) * x_sorted).sum(1) / (count * x_sorted.sum(1))
    assert np.allclose(compare.scores["sparseness"][column_id], gini.numpy(), atol=1e-5)
mass, gradient_mass = lrp_and_gradient("relevance_mass")
sparse, gradient_sparse = lrp_and_gradient("sparseness")
assert all(m > gradient_mass[0] + 0.1 for m, _ in mass.values()), (mass, gradient_mass)
assert all(0.4 <= m <= 0.5 for m, _ in mass.values()), mass  # "about 0.45"
assert 0.2 <= gradient_mass[0] <= 0.32, gradient_mass  # "about 0.27"
assert all(s > gradient_sparse[0] + 0.2 for s, _ in sparse.values()), (sparse, gradient_sparse)
means = [m for m, _ in mass.values()]
assert max(means) - min(means) < 0.05
assert max(means) - min(means) <= max(sd for _, sd in mass.values())
""",
    ),
    (
        'ours = relevance_mass_accuracy(compare.relevance("EpsilonPlusFlat")',
        """
assert np.allclose(ours.numpy(), compare.scores["relevance_mass"][widget_id], atol=1e-6)
""",
    ),
    (
        "compare.compute_scores()",
        MEANS
        + """
faithful, gradient_faithful = lrp_and_gradient("faithfulness")
sensitive, gradient_sensitive = lrp_and_gradient("class_sensitivity")
all_means = [m for m, _ in faithful.values()] + [gradient_faithful[0]]
# the spread over images of every LRP column exceeds the differences between all column means
assert min(sd for _, sd in faithful.values()) > max(all_means) - min(all_means), faithful
assert all(sd > 2 for _, sd in faithful.values())  # "several units"
assert all(0.5 <= m <= 0.7 for m, _ in sensitive.values()), sensitive  # "around 0.6"
assert gradient_sensitive[0] < 0, gradient_sensitive
# the curves: 4×4 regions (256), 13 (5 %) per step, so 21 points; they start at the clean
# score and end at the score of the all-zero image
import torch
with torch.no_grad():
    clean = model(images)
    zeros = model(torch.zeros_like(images))
rows = torch.arange(len(images))
classes = torch.tensor(compare.classes)
for column in compare.columns:
    curves = compare.curves[str(column["id"])]
    morf, lerf = np.array(curves["morf"]), np.array(curves["lerf"])
    assert morf.shape == lerf.shape == (8, 21)
    assert np.isclose(curves["fractions"][1], 13 / 256)
    assert np.allclose(morf[:, 0], clean[rows, classes].numpy(), atol=1e-4)
    assert np.allclose(morf[:, -1], zeros[rows, classes].numpy(), atol=1e-4)
    assert np.allclose(lerf[:, -1], morf[:, -1]) and np.allclose(lerf[:, 0], morf[:, 0])
""",
    ),
]

CANONIZERS = [
    (
        "original_weight = conv.weight",
        """
# keep the batch norm's state for the checks below
bn_state = {k: v.detach().clone() for k, v in model.features[1].state_dict().items()}
bn_state["eps"] = model.features[1].eps
""",
    ),
    (
        "merged = SequentialMergeBatchNorm().apply(model)",
        """
# w' = s w, b' = β − s μ with s = γ / sqrt(σ² + ε), in float64 from the original parameters
assert len(merged) == 3
bn0 = model.features[1]
s = bn_state["weight"].double() / torch.sqrt(bn_state["running_var"].double() + bn_state["eps"])
merged_weight = original_weight.detach().double() * s[:, None, None, None]
merged_bias = bn_state["bias"].double() - bn_state["running_mean"].double() * s
assert torch.allclose(model.features[0].weight.double(), merged_weight, rtol=1e-6, atol=1e-7)
assert torch.allclose(model.features[0].bias.double(), merged_bias, rtol=1e-6, atol=1e-7)
# the batch norm is now the identity
probe = torch.randn(2, bn0.num_features, 4, 4)
with torch.no_grad():
    assert torch.allclose(bn0(probe), probe, atol=1e-6)
assert (output_merged - output_before).abs().max() < 1e-5
""",
    ),
    (
        "for handle in reversed(merged):",
        """
assert model.features[0].weight is original_weight and model.features[0].bias is None
with torch.no_grad():
    assert torch.equal(model(images), output_before)  # the model is as before
""",
    ),
    (
        "with_canonizers = explain(canonizers=demo_canonizers())",
        """
# per layer: conserving in both (|entering − leaving| ≤ 1e-5 max(|entering|, |leaving|));
# in total: exactly twice the seed without canonizers, the seed (1 per image) with them
seed_total = with_canonizers.seed.sum(dim=1)
assert torch.equal(seed_total, torch.ones(8))
assert torch.equal(without.seed.sum(dim=1), seed_total)
for result in (without, with_canonizers):
    for record in result.records.values():
        gap = (record.entering - record.leaving).abs()
        assert (gap <= 1e-5 * torch.maximum(record.entering.abs(), record.leaving.abs())).all()
assert torch.allclose(without.relevance.sum(dim=(1, 2, 3)), 2 * seed_total, atol=1e-5)
# the model-level check: input total − (seed total − Σ absorbed by modules) is +1 per image
# without canonizers (created outside modules), 0 with them
from lrp_core.live import OUTSIDE_MODULES
def unaccounted(result):
    absorbed = sum(r.entering - r.leaving for r in result.records.values())
    return result.relevance.sum(dim=(1, 2, 3)).double() - (result.seed.sum(dim=1) - absorbed)
assert torch.allclose(unaccounted(without), torch.ones(8, dtype=torch.float64), atol=1e-5)
assert torch.allclose(unaccounted(with_canonizers), torch.zeros(8, dtype=torch.float64), atol=1e-5)
report = without.conservation()
assert report.names == [OUTSIDE_MODULES] and OUTSIDE_MODULES == "(outside modules)", report
violation = report.violations[0]
assert violation.kind == "created"
def float64(values):
    return torch.tensor(values, dtype=torch.float64)
without_input = without.relevance.sum(dim=(1, 2, 3)).double()
assert torch.allclose(float64(violation.entering), seed_total.double())
assert torch.allclose(float64(violation.leaving), without_input, atol=1e-6)
assert abs(violation.relative - 0.5) < 1e-5  # |2 − 1| / max(1, 2)
assert OUTSIDE_MODULES in str(report)
assert with_canonizers.conservation().ok
assert torch.allclose(with_canonizers.relevance.sum(dim=(1, 2, 3)), seed_total, atol=1e-5)
assert "block.canonizer_sum" in with_canonizers.records
from lrp_widgets.demo.canonizers import RESIDUAL_BATCH_NORMS
assert [bn for _, bn in RESIDUAL_BATCH_NORMS] == ["block.bn1", "block.bn2"]
batch_norms = [n for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)]
assert len(batch_norms) == 5
assert all(without.records[n].rule == "Pass" for n in batch_norms)
assert "block.canonizer_sum" not in without.records
""",
    ),
    (
        "outside = without.conservation().violations[-1]",
        """
assert outside.name == OUTSIDE_MODULES and outside.kind == "created"
assert abs(outside.entering[0] - 1) < 1e-12 and abs(outside.leaving[0] - 2) < 1e-5
assert OUTSIDE_MODULES not in with_canonizers.conservation().names
""",
    ),
    (
        'for name in ["head.0", "block.relu2"',
        """
for name in ["head.0", "block.relu2", "block.conv2", "block.conv1"]:
    assert abs(entering(without, name) - 1) < 1e-5
assert abs(entering(without, "features.7") - 2) < 1e-5
""",
    ),
    (
        'sum_in = entering(with_canonizers, "block.canonizer_sum")',
        """
# Norm on a + b: R_a = a / (a + b) R; check the branch share against the forward values
assert with_canonizers.records["block.canonizer_sum"].rule == "Norm"
assert 0.5 < branch / sum_in < 0.95  # the text prints the split; it is a real split
shortcut = sum_in - branch
assert abs(entering(with_canonizers, "features.7") - 1) < 1e-5
assert shortcut > 0.05
# Norm on Sum: R_a = a / (a + b) R elementwise, with a = bn2(conv2(...)) and b = the shortcut
# computed here on the un-canonized model (the same function up to 1e-5)
with torch.no_grad():
    b_in = model.features(images)
    blk = model.block
    a_in = blk.bn2(blk.conv2(blk.relu1(blk.bn1(blk.conv1(b_in)))))
with LiveExplanation(model, images, EpsilonPlusFlat(zero_params="bias"),
                     canonizers=demo_canonizers()) as live:
    record = live.explain(keep_tensors=["block.canonizer_sum"]).records["block.canonizer_sum"]
z_sum = a_in + b_in
ratio = record.relevance_out / (z_sum + 1e-6 * torch.where(z_sum >= 0, 1.0, -1.0))
expected = torch.stack([a_in, b_in], dim=-1) * ratio[..., None]
assert torch.allclose(record.relevance_in, expected, atol=1e-5)
""",
    ),
    (
        "for title, explorer in [",
        """
plain_flags = [e["violation"] for e in plain_explorer.health]
canon_names = [e["name"] for e in canonized_explorer.health]
# without canonizers: no layer flagged, and a last entry for relevance created outside modules
# (seed totals entering, input totals leaving); with them: nothing flagged, no such entry
*plain_layers, plain_outside = plain_explorer.health
assert not any(e["violation"] for e in plain_layers) and all(e["module"] for e in plain_layers)
assert plain_outside["name"] == OUTSIDE_MODULES and plain_outside["module"] is False
assert plain_outside["violation"] == "created" and plain_outside["rule"] == ""
assert plain_outside["entering"] == [1.0] * 8
plain_input = plain_explorer.relevance.sum(dim=(1, 2, 3))
assert torch.allclose(float64(plain_outside["leaving"]), plain_input.double(), atol=1e-6)
assert not any(e["violation"] for e in canonized_explorer.health)
assert all(e["module"] for e in canonized_explorer.health)
assert OUTSIDE_MODULES not in canon_names
assert "block.canonizer_sum" in canon_names
assert "block.canonizer_sum" not in [e["name"] for e in plain_explorer.health]
assert torch.allclose(plain_explorer.relevance.sum(dim=(1, 2, 3)), torch.full((8,), 2.0), atol=1e-5)
assert torch.allclose(canonized_explorer.relevance.sum(dim=(1, 2, 3)), torch.ones(8), atol=1e-5)
health = {e["name"]: e for e in plain_explorer.health}
# the bars (relevance leaving each layer): twice as long before the block as after it
assert abs(health["features.0"]["leaving"][0] / health["head.0"]["leaving"][0] - 2) < 1e-4
assert canonized_explorer.rules["block.canonizer_sum"]["rule"] == "Norm"
# with canonizers: 1 leaves every layer outside the branch, the branch's share inside it
leaving = {e["name"]: e["leaving"][0] for e in canonized_explorer.health}
branch_layers = {"block.conv1", "block.bn1", "block.relu1", "block.conv2", "block.bn2"}
assert all(abs(v - 1) < 1e-5 for n, v in leaving.items() if n not in branch_layers), leaving
assert all(0.05 < leaving[n] < 0.95 for n in branch_layers), leaving
""",
    ),
    (
        'canonized_explorer.set_composite("EpsilonPlusFlat")',
        """
assert losing == ["features.4", "block.conv1", "block.conv2", "head.0"], losing
assert set(rules.values()) == {"ZPlus"}
assert all(canonized_explorer.model.get_submodule(n).bias is not None for n in losing)
# closing restores the models: same parameters and buffers as the shipped ones, no Sum module,
# no hooks (the `with LiveExplanation` blocks of section 3 restored `model` already)
fresh = load_model().state_dict()
for restored in (model, canonized_explorer.model):
    canonized_explorer.close()
    assert "canonizer_sum" not in dict(restored.block.named_children())
    state = restored.state_dict()
    assert state.keys() == fresh.keys() and all(torch.equal(state[k], fresh[k]) for k in fresh)
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in restored.modules())
""",
    ),
]

QUICKSTART = [
    (
        'explorer.assign("Gamma", name="features.4", gamma=0.5)',
        """
assert explorer.rules["features.4"] == {
    "rule": "Gamma", "params": explorer.rules["features.4"]["params"], "origin": "override"
}
assert explorer.rules["features.4"]["params"]["gamma"] == 0.5
assert explorer.live.forward_count == 1  # the rule change ran no forward pass
""",
    ),
    (
        "script_relevance = attributor(",
        """
# the script reproduces the widget's relevance
assert torch.allclose(script_relevance, explorer.relevance, rtol=1e-5, atol=1e-8)
assert script_relevance.shape == images.shape
""",
    ),
    (
        "imsave(heatmap_path",
        """
import matplotlib.image as mpimg
from lrp_core.image import imgify
import numpy as np

saved = mpimg.imread(heatmap_path)
assert saved.shape[:2] == (64, 64)
expected = np.asarray(
    imgify(explorer.relevance[0].sum(dim=0), symmetric=True, cmap="coldnhot").convert("RGB")
)
assert np.array_equal((saved[..., :3] * 255).round().astype(np.uint8), expected)
""",
    ),
]

CLAIMS = {
    "01_quickstart.ipynb": QUICKSTART,
    "02_custom_rules.ipynb": CUSTOM_RULES + CUSTOM_RULES_COMPARE,
    "03_comparing_rules.ipynb": COMPARING_RULES,
    "04_canonizers_and_residuals.ipynb": CANONIZERS,
}


def with_checks(notebook: nbformat.NotebookNode, checks: list[tuple[str, str]]):
    """A copy of ``notebook`` with each check cell inserted after its anchor's cell."""
    after: dict[int, list] = {}
    for anchor, source in checks:
        matches = [
            i for i, c in enumerate(notebook.cells) if c.cell_type == "code" and anchor in c.source
        ]
        assert len(matches) == 1, f"anchor {anchor!r} matches {len(matches)} code cells, not 1"
        check = nbformat.v4.new_code_cell(f"# check: {anchor}\n{source.strip()}")
        after.setdefault(matches[0], []).append(check)
    cells = []
    for i, cell in enumerate(notebook.cells):
        cells += [cell, *after.get(i, [])]
    return nbformat.v4.new_notebook(cells=cells, metadata=notebook.metadata)


@pytest.mark.parametrize("name", sorted(CLAIMS))
def test_notebook_claims(name: str):
    path = NOTEBOOKS / name
    notebook = nbformat.read(path, as_version=4)
    checked = with_checks(notebook, CLAIMS[name])
    client = NotebookClient(
        checked,
        timeout=TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()  # raises CellExecutionError with the failing check's assertion


def test_every_claimed_notebook_exists():
    missing = [name for name in CLAIMS if not (NOTEBOOKS / name).is_file()]
    assert not missing, f"notebooks with claims but no file: {missing}"
