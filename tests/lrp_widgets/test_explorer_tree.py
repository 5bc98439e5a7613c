"""The Explorer's layer tree for repetitive models, in Python: the rows it sends (``group`` and
``op`` fields) and rules assigned to a group of repeated blocks.

A group is assigned the way the page does it: an ``assign`` command naming the group's members.
When they are all of their parent's children, the widget turns them into one ``within`` override
on the parent, which targets exactly their leaves; otherwise each member is its own ``within``
override. Either way: one recomputation, no forward pass (the model's own forward hook counts).
"""

from __future__ import annotations

import torch
from torch import nn

from lrp_widgets import Explorer
from lrp_widgets._payload import layer_rows


class Unit(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.fc(x))


class Repetitive(nn.Module):
    """stem (Linear), blocks (ModuleList of 6 Units), tail (Sequential: Unit, Unit, Linear)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Linear(4, 4)
        self.blocks = nn.ModuleList(Unit() for _ in range(6))
        self.tail = nn.Sequential(Unit(), Unit(), nn.Linear(4, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for unit in self.blocks:
            x = unit(x)
        return self.tail(x)


def make_explorer() -> tuple[Explorer, list[int]]:
    model = Repetitive()
    forwards = [0]
    model.register_forward_hook(lambda *_: forwards.__setitem__(0, forwards[0] + 1))
    x = torch.randn(2, 4, generator=torch.Generator().manual_seed(1))
    return Explorer(model, x), forwards


def send(explorer: Explorer, content: dict) -> None:
    explorer._on_message(explorer, content, [])


def test_rows_name_the_group_of_each_member():
    explorer, _ = make_explorer()
    groups = {row["name"]: row["group"] for row in explorer.layers if row["group"]}
    assert groups == {
        **{f"blocks.{i}": "blocks" for i in range(6)},
        "tail.0": "tail.0-1",
        "tail.1": "tail.0-1",
    }
    assert all(row["op"] == "" for row in explorer.layers)


def test_rows_carry_captured_operations_from_the_description():
    # a hand-made description with two captured operations under "attn" (what a capture adds)
    tree = {
        "name": "",
        "type": "Model",
        "params": 8,
        "leaf": False,
        "children": [
            {
                "name": "attn",
                "type": "Attention",
                "params": 8,
                "leaf": False,
                "output_shapes": [[2, 3, 4]],
                "children": [
                    {"name": "attn.q", "type": "Linear", "params": 8, "leaf": True, "children": []},
                    {
                        "name": "attn:matmul#0",
                        "type": "matmul",
                        "op": "matmul",
                        "params": 0,
                        "leaf": True,
                        "output_shapes": [[2, 3, 3]],
                        "children": [],
                    },
                ],
            }
        ],
    }
    rows = layer_rows(tree)
    assert [(r["name"], r["parent"], r["op"], r["output_shape"]) for r in rows] == [
        ("attn", "", "", [2, 3, 4]),
        ("attn.q", "attn", "", None),
        ("attn:matmul#0", "attn", "matmul", [2, 3, 3]),
    ]


def test_a_rule_on_a_whole_group_is_one_override_and_one_rerun():
    explorer, forwards = make_explorer()
    computed = explorer.compute_count
    members = [f"blocks.{i}" for i in range(6)]
    send(explorer, {"type": "assign", "request": 1, "names": members, "rule": "Epsilon",
                    "params": {"epsilon": 0.5}})  # fmt: skip
    assert explorer.error == ""
    overridden = {n for n, s in explorer.rules.items() if s["origin"] == "override"}
    assert overridden == {f"blocks.{i}.{leaf}" for i in range(6) for leaf in ("fc", "act")}
    assert all(explorer.rules[n]["rule"] == "Epsilon" for n in overridden)
    assert all(explorer.rules[n]["params"]["epsilon"] == 0.5 for n in overridden)
    overrides = explorer.live.assignment.overrides
    assert [(o.name, o.type, o.within) for o in overrides] == [(None, None, "blocks")]
    assert explorer.compute_count == computed + 1
    assert forwards[0] == 1 and explorer.live.forward_count == 1


def test_a_rule_on_a_partial_group_overrides_each_member():
    explorer, forwards = make_explorer()
    computed = explorer.compute_count
    send(explorer, {"type": "assign", "request": 1, "names": ["tail.0", "tail.1"],
                    "rule": "Epsilon", "params": {"epsilon": 0.25}})  # fmt: skip
    overrides = explorer.live.assignment.overrides
    assert [(o.name, o.type, o.within) for o in overrides] == [
        (None, None, "tail.0"),
        (None, None, "tail.1"),
    ]
    overridden = {n for n, s in explorer.rules.items() if s["origin"] == "override"}
    assert overridden == {"tail.0.fc", "tail.0.act", "tail.1.fc", "tail.1.act"}
    assert all(explorer.rules[n]["params"]["epsilon"] == 0.25 for n in overridden)
    assert explorer.compute_count == computed + 1
    assert forwards[0] == 1


class _Attention(nn.Module):
    """A residual self-attention written with functional calls the capture sees."""

    def __init__(self) -> None:
        super().__init__()
        self.q = nn.Linear(4, 4)
        self.k = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = torch.softmax(self.q(x) @ self.k(x).transpose(-2, -1), dim=-1)
        return x + scores @ x


class _AttentionModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = _Attention()
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.attn(x).mean(1))


def test_captured_calls_of_a_real_capture_become_rows_under_their_module():
    from lrp_core.live import LiveExplanation
    from lrp_core.op_composites import AttnLRP

    torch.manual_seed(0)
    model = _AttentionModel().eval()
    with LiveExplanation(model, torch.randn(2, 5, 4), AttnLRP()) as live:
        rows = layer_rows(live.describe())
    ops = [(row["name"], row["parent"], row["op"]) for row in rows if row["op"]]
    assert [op for _, parent, op in ops if parent == "attn"] == [
        "matmul",
        "softmax",
        "matmul",
        "add",
    ]
    assert all(name.startswith(f"{parent}:") for name, parent, _ in ops)
    names = [row["name"] for row in rows]
    # every operation row comes after its module's row (parents first)
    assert all(names.index(parent) < names.index(name) for name, parent, _ in ops if parent)
