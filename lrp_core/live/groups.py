"""Repeated blocks of a model: runs of sibling modules with the same class and structure.

A transformer's ``layers.0`` … ``layers.31`` (a ``ModuleList`` of decoder layers) are 32 copies
of one subtree; a layer tree shows them as one *group* ("LlamaDecoderLayer ×32") that a rule can
be assigned to at once. Groups are found on the tree of ``describe_model`` (nested dicts with
``name``, ``type``, ``params``, ``children`` and, for captured functional operations, ``op`` on
an operation node or ``ops`` on a module node).
Siblings form a group when

- they are consecutive children of one parent,
- each is a block (it has children; single layers never group), and
- they have the same *structure*: the same class, parameter count and operation type, and
  children with the same names relative to them (``.self_attn``, ``:matmul#1``) that have the
  same structure in turn,

and the run has at least ``MIN_MEMBERS`` members. A group's name is the parent's qualified name
when the run is all of the parent's children (``"layers"``); otherwise, and for runs directly
below the root, ``"<parent>.<first>-<last>"`` (``"features.2-5"``, ``"2-5"``) from the first and
last member's own names.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

#: the fewest siblings that make a group
MIN_MEMBERS = 2


@dataclass(frozen=True)
class RepeatedGroup:
    """A run of sibling blocks with the same structure.

    Attributes
    ----------
    name : str
        The group's name (see the module docstring), unique in the tree.
    type : str
        The members' class name.
    parent : str
        Qualified name of the members' parent (``""``: the root).
    members : tuple of str
        Qualified names of the members, in order.
    whole : bool
        Whether the members are all of the parent's children, so that ``within=parent``
        targets exactly the members' leaves.
    """

    name: str
    type: str
    parent: str
    members: tuple[str, ...]
    whole: bool


def _relative(child: dict[str, Any], parent: dict[str, Any]) -> str:
    """``child``'s name after its parent's (``".0"``, ``":matmul#1"``; whole name at the root)."""
    prefix = parent["name"]
    name = child["name"]
    return name[len(prefix) :] if prefix and name.startswith(prefix) else name


class _Structures:
    """Numbers the distinct subtree structures: equal numbers, equal structures."""

    def __init__(self) -> None:
        self._ids: dict[tuple, int] = {}
        self._of_node: dict[int, int] = {}

    def of(self, node: dict[str, Any]) -> int:
        known = self._of_node.get(id(node))
        if known is not None:
            return known
        children = tuple((_relative(c, node), self.of(c)) for c in node.get("children", []))
        ops = tuple(op["op"] for op in node.get("ops", []))
        key = (node["type"], node.get("params", 0), node.get("op"), children, ops)
        number = self._ids.setdefault(key, len(self._ids))
        self._of_node[id(node)] = number
        return number


def _walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("children", []):
        yield from _walk(child)


def _runs(children: list[dict[str, Any]], structures: _Structures) -> Iterator[list[dict]]:
    """Maximal runs of consecutive blocks with equal structure, at least ``MIN_MEMBERS`` long."""
    run: list[dict[str, Any]] = []
    for child in [*children, None]:
        block = child is not None and bool(child.get("children"))
        if block and run and structures.of(child) == structures.of(run[0]):
            run.append(child)
            continue
        if len(run) >= MIN_MEMBERS:
            yield run
        run = [child] if block else []


def _group_name(parent: dict[str, Any], run: list[dict[str, Any]], whole: bool) -> str:
    if whole and parent["name"]:
        return parent["name"]
    first, last = (_relative(m, parent).lstrip(".") for m in (run[0], run[-1]))
    span = f"{first}-{last}"
    return f"{parent['name']}.{span}" if parent["name"] else span


def repeated_groups(tree: dict[str, Any]) -> list[RepeatedGroup]:
    """The groups of repeated blocks in ``tree`` (a ``describe_model`` tree), parents first.

    Parameters
    ----------
    tree : dict
        The root node: ``name``, ``type``, optional ``params`` and ``op``, ``children``.

    Returns
    -------
    list of RepeatedGroup
        In pre-order of their first member; groups nest (a member may contain groups).
    """
    structures = _Structures()
    groups = []
    for node in _walk(tree):
        children = node.get("children", [])
        for run in _runs(children, structures):
            whole = len(run) == len(children)
            groups.append(
                RepeatedGroup(
                    name=_group_name(node, run, whole),
                    type=run[0]["type"],
                    parent=node["name"],
                    members=tuple(m["name"] for m in run),
                    whole=whole,
                )
            )
    return groups


def mark_groups(tree: dict[str, Any]) -> list[RepeatedGroup]:
    """Set ``"group"`` (the group's name) on every member node of ``tree``; return the groups."""
    groups = repeated_groups(tree)
    members = {name: group.name for group in groups for name in group.members}
    for node in _walk(tree):
        if node["name"] in members and node is not tree:
            node["group"] = members[node["name"]]
    return groups


def covering_modules(names: list[str], children: dict[str, list[str]]) -> list[str]:
    """``names`` with every complete set of a module's children replaced by that module.

    Repeated until nothing changes, never up to the root (``""``): ``blocks.0`` … ``blocks.39``
    become ``blocks``, so a rule for all of them is one ``within="blocks"`` override.

    Parameters
    ----------
    names : list of str
        Qualified module names (duplicates are dropped, the order is kept).
    children : dict
        The child names of every module, by the module's name (``""`` for the root).

    Returns
    -------
    list of str
        The names, each replaced set standing where its first member stood.
    """
    chosen = list(dict.fromkeys(names))
    while True:
        present = set(chosen)
        parent = next(
            (p for p, kids in children.items() if p and p not in present and present >= set(kids)),
            None,
        )
        if parent is None:
            return chosen
        members = set(children[parent])
        first = next(i for i, name in enumerate(chosen) if name in members)
        kept = [name for name in chosen if name not in members]
        chosen = kept[:first] + [parent] + kept[first:]
