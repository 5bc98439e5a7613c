"""Runs of repeated blocks in a model's tree (``lrp_core.live.groups``).

Which siblings group: consecutive blocks (modules with children) of one parent with the same
class, parameter count and, recursively, the same children under the same relative names (and
operation types, for captured operations), at least two of them. Names: the parent's name when
the run is all its children, else ``"<parent>.<first>-<last>"`` (``"<first>-<last>"`` at the
root). Every case below is checked against a hand-written expectation.
"""

from __future__ import annotations

from torch import nn

from lrp_core.live import (
    RepeatedGroup,
    covering_modules,
    describe_model,
    mark_groups,
    repeated_groups,
)


class Unit(nn.Module):
    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.fc = nn.Linear(width, width)
        self.act = nn.ReLU()


class OtherUnit(nn.Module):  # the same children as Unit, another class
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.act = nn.ReLU()


class Stage(nn.Module):
    def __init__(self, units: int) -> None:
        super().__init__()
        self.units = nn.ModuleList(Unit() for _ in range(units))
        self.norm = nn.LayerNorm(4)


def groups_of(model: nn.Module) -> list[RepeatedGroup]:
    return repeated_groups(describe_model(model))


def test_a_module_list_of_identical_blocks_is_one_group_named_after_it():
    model = nn.Module()
    model.embed = nn.Linear(4, 4)
    model.layers = nn.ModuleList(Unit() for _ in range(4))
    model.head = nn.Linear(4, 2)
    assert groups_of(model) == [
        RepeatedGroup(
            name="layers",
            type="Unit",
            parent="layers",
            members=("layers.0", "layers.1", "layers.2", "layers.3"),
            whole=True,
        )
    ]


def test_a_run_among_other_siblings_is_named_by_its_span():
    # children of the root Sequential: 0 Linear, 1..3 Unit, 4 Linear: the run 1-3 is not whole
    model = nn.Sequential(nn.Linear(4, 4), Unit(), Unit(), Unit(), nn.Linear(4, 2))
    assert groups_of(model) == [
        RepeatedGroup(name="1-3", type="Unit", parent="", members=("1", "2", "3"), whole=False)
    ]
    nested = nn.Sequential(nn.Sequential(nn.Linear(4, 4), Unit(), Unit()), nn.Linear(4, 2))
    (group,) = groups_of(nested)
    assert (group.name, group.parent, group.members, group.whole) == (
        "0.1-2",
        "0",
        ("0.1", "0.2"),
        False,
    )


def test_groups_nest_inside_repeated_blocks():
    # two identical stages at the root (whole run of the root: named by its span), each with a
    # ModuleList of three units (whole: named after the list)
    model = nn.Sequential(Stage(3), Stage(3))
    assert [(g.name, g.type, g.members) for g in groups_of(model)] == [
        ("0-1", "Stage", ("0", "1")),
        ("0.units", "Unit", ("0.units.0", "0.units.1", "0.units.2")),
        ("1.units", "Unit", ("1.units.0", "1.units.1", "1.units.2")),
    ]


def test_blocks_that_differ_do_not_group():
    wider = nn.Sequential(Unit(4), Unit(5))  # same class and children, other parameter count
    other_class = nn.Sequential(Unit(), OtherUnit())
    other_children = nn.Sequential(Stage(2), Stage(3))  # units.2 only in the second
    assert groups_of(wider) == []
    assert groups_of(other_class) == []
    assert [g.name for g in groups_of(other_children)] == ["0.units", "1.units"]


def test_only_consecutive_blocks_group_and_single_layers_never():
    # Unit, Linear, Unit: equal blocks but not adjacent; five identical Linear leaves: no blocks
    assert groups_of(nn.Sequential(Unit(), nn.Linear(4, 4), Unit())) == []
    assert groups_of(nn.Sequential(*(nn.Linear(4, 4) for _ in range(5)))) == []
    assert groups_of(nn.Sequential(Unit())) == []  # one member is no group
    # two runs of different blocks side by side
    model = nn.Sequential(Unit(), Unit(), OtherUnit(), OtherUnit(), OtherUnit())
    assert [(g.name, g.members) for g in groups_of(model)] == [
        ("0-1", ("0", "1")),
        ("2-4", ("2", "3", "4")),
    ]


def op(name: str, kind: str) -> dict:
    return {"name": name, "type": kind, "params": 0, "leaf": True, "op": kind, "children": []}


def block(name: str, ops: list[str]) -> dict:
    """A hand-made describe node: a block with a Linear and captured operations below it."""
    linear = {"name": f"{name}.fc", "type": "Linear", "params": 20, "leaf": True, "children": []}
    kids = [linear] + [op(f"{name}:{kind}#{i}", kind) for i, kind in enumerate(ops)]
    return {"name": name, "type": "Block", "params": 20, "leaf": False, "children": kids}


def test_captured_operations_are_part_of_the_structure():
    # blocks.0 and .1 capture matmul then add; blocks.2 captures add then matmul: only 0-1 group
    tree = {
        "name": "",
        "type": "Model",
        "params": 60,
        "leaf": False,
        "children": [
            {
                "name": "blocks",
                "type": "ModuleList",
                "params": 60,
                "leaf": False,
                "children": [
                    block("blocks.0", ["matmul", "add"]),
                    block("blocks.1", ["matmul", "add"]),
                    block("blocks.2", ["add", "matmul"]),
                ],
            }
        ],
    }
    groups = mark_groups(tree)
    assert groups == [
        RepeatedGroup(
            name="blocks.0-1",
            type="Block",
            parent="blocks",
            members=("blocks.0", "blocks.1"),
            whole=False,
        )
    ]
    blocks = tree["children"][0]["children"]
    assert [b.get("group") for b in blocks] == ["blocks.0-1", "blocks.0-1", None]
    assert "group" not in tree and "group" not in tree["children"][0]


def test_describe_marks_the_members_of_each_group():
    model = nn.Sequential(nn.Linear(4, 4), Stage(2), Stage(2))
    marked = {}

    def walk(node: dict) -> None:
        marked[node["name"]] = node.get("group")
        for child in node["children"]:
            walk(child)

    walk(describe_model(model))
    assert {name: group for name, group in marked.items() if group} == {
        "1": "1-2",
        "2": "1-2",
        "1.units.0": "1.units",
        "1.units.1": "1.units",
        "2.units.0": "2.units",
        "2.units.1": "2.units",
    }


def test_covering_modules_replaces_complete_sets_of_children_by_their_parent():
    children = {
        "": ["stem", "blocks", "head"],
        "blocks": ["blocks.0", "blocks.1", "blocks.2"],
        "blocks.0": ["blocks.0.fc", "blocks.0.act"],
    }
    every_block = ["blocks.0", "blocks.1", "blocks.2"]
    assert covering_modules(every_block, children) == ["blocks"]
    # repeated: the leaves of blocks.0 become blocks.0, which completes blocks
    assert covering_modules(["blocks.0.fc", "blocks.0.act", "blocks.1", "blocks.2"], children) == [
        "blocks"
    ]
    # an incomplete set stays as it is, in order, without duplicates; never up to the root
    assert covering_modules(["blocks.2", "blocks.0", "blocks.2"], children) == [
        "blocks.2",
        "blocks.0",
    ]
    assert covering_modules(["stem", *every_block, "head"], children) == ["stem", "blocks", "head"]
