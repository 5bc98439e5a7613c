"""The Python widgets' synced traits and the TypeScript trait interfaces name the same traits.

Python side: ``Explorer.class_traits(sync=True)`` / ``Compare.class_traits(sync=True)`` (class
inspection, no widget is built), minus what the framework syncs for every widget: the traits of
``anywidget.AnyWidget`` itself (``layout``, ``_view_name``, ...) and private names (``_esm`` and
``_css``, the front-end code). TypeScript side: the members of ``interface ExplorerTraits`` and
``interface CompareTraits``, read from the declarations in ``js/src`` (comments stripped, members
split at top-level ``;``). A trait added on one side only fails here, naming it.
"""

from __future__ import annotations

import re
from pathlib import Path

import anywidget
import pytest

from lrp_widgets import Compare, Explorer

JS_SRC = Path(__file__).resolve().parents[2] / "js" / "src"
CONTRACTS = {"ExplorerTraits": Explorer, "CompareTraits": Compare}

_COMMENTS = re.compile(r"/\*.*?\*/|//[^\n]*", re.DOTALL)
_MEMBER_NAME = re.compile(r"^(?:readonly\s+)?([A-Za-z_$][\w$]*)\??\s*:")
_OPENING = {"{": "}", "(": ")", "[": "]"}


def python_trait_names(widget: type[anywidget.AnyWidget]) -> set[str]:
    """Names of the traits ``widget`` syncs for its own page (framework traits left out)."""
    framework = set(anywidget.AnyWidget.class_traits(sync=True))
    names = set(widget.class_traits(sync=True)) - framework
    return {name for name in names if not name.startswith("_")}


def interface_body(source: str, name: str) -> str | None:
    """The text between the braces of ``interface <name> { ... }`` in ``source`` (None if absent).

    Raises
    ------
    ValueError
        The interface extends another one (its inherited members could not be read here) or its
        braces do not close.
    """
    found = re.search(rf"\binterface\s+{name}\b([^{{]*)\{{", source)
    if found is None:
        return None
    if found.group(1).strip():
        heritage = found.group(1).strip()
        raise ValueError(f"interface {name} has {heritage!r}: declare every trait in it")
    depth, start = 1, found.end()
    for i in range(start, len(source)):
        depth += {"{": 1, "}": -1}.get(source[i], 0)
        if depth == 0:
            return source[start:i]
    raise ValueError(f"interface {name}: no closing brace")


def member_names(body: str) -> set[str]:
    """Property names of an interface body: its top-level members, split at ``;``."""
    body = _COMMENTS.sub("", body)
    members, closers, current = [], [], []
    for char in body:
        if char in _OPENING:
            closers.append(_OPENING[char])
        elif closers and char == closers[-1]:
            closers.pop()
        if char == ";" and not closers:
            members.append("".join(current))
            current = []
        else:
            current.append(char)
    members.append("".join(current))
    names = set()
    for member in (m.strip() for m in members):
        if not member:
            continue
        match = _MEMBER_NAME.match(member)
        if match is None:
            raise ValueError(f"cannot read the member {member!r}")
        names.add(match.group(1))
    return names


def typescript_trait_names(name: str, src: Path = JS_SRC) -> set[str]:
    """Members of the one ``interface <name>`` declared under ``src`` (``*.ts``)."""
    bodies = []
    for path in sorted(src.rglob("*.ts")):
        body = interface_body(path.read_text(encoding="utf-8"), name)
        if body is not None:
            bodies.append((path, body))
    paths = [str(path.relative_to(src)) for path, _ in bodies]
    assert len(bodies) == 1, f"interface {name} must be declared once in js/src, found in {paths}"
    return member_names(bodies[0][1])


def contract_differences(interface: str, python: set[str], typescript: set[str]) -> list[str]:
    """One line per side that lacks names of the other (empty: the two agree)."""
    lines = []
    if python - typescript:
        missing = ", ".join(sorted(python - typescript))
        lines.append(f"synced in Python but missing from the TypeScript {interface}: {missing}")
    if typescript - python:
        missing = ", ".join(sorted(typescript - python))
        lines.append(f"in the TypeScript {interface} but not synced by the Python side: {missing}")
    return lines


@pytest.mark.parametrize("interface", sorted(CONTRACTS))
def test_python_traits_match_typescript_interface(interface):
    python = python_trait_names(CONTRACTS[interface])
    typescript = typescript_trait_names(interface)
    assert python, "no synced traits found on the Python widget"
    differences = contract_differences(interface, python, typescript)
    assert not differences, "\n".join(differences)


def test_reader_finds_members_and_reports_both_sides():
    source = """
    /** Not this one. */
    export interface OtherTraits { ignored: number }
    export interface DemoTraits {
      /** A doc comment with a colon: and a semicolon; inside. */
      plain: string;
      optional?: number; // trailing comment: here
      nested: Record<string, { inner: number; deeper: { x: string } }>;
      partial: Partial<{ task: string; done: number }>;
      tuple: Array<[number, number]>;
      union: "a" | "b"
    }
    """
    body = interface_body(source, "DemoTraits")
    assert member_names(body) == {"plain", "optional", "nested", "partial", "tuple", "union"}
    assert interface_body(source, "MissingTraits") is None
    with pytest.raises(ValueError, match="extends"):
        interface_body("interface A extends B { x: number }", "A")

    lines = contract_differences("DemoTraits", {"plain", "only_python"}, {"plain", "only_ts"})
    assert lines == [
        "synced in Python but missing from the TypeScript DemoTraits: only_python",
        "in the TypeScript DemoTraits but not synced by the Python side: only_ts",
    ]


def test_python_side_leaves_out_framework_traits_only():
    names = python_trait_names(Explorer)
    assert {"heatmap", "status", "answered"} <= names
    assert not names & {"layout", "_esm", "_css", "_view_name", "tabbable"}
