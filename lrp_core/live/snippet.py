"""A rule assignment as a composite: an object for scripts, or Python source.

Both work on plain values: the ``RuleAssignment``, the composite as ``config.composite_spec``
gives it (registered name and keywords) and the name of the registered canonizer set. The
composite is ``MixedComposite([NameMapComposite(overrides), base], canonizers=...)``: every
module whose effective rule comes from an override is listed by name (``lrp_core.core.Hook()``
stands for the plain gradient), all others fall through to the base composite.
"""

from __future__ import annotations

from typing import Any

import torch

from .. import rules
from ..composites import MixedComposite, NameMapComposite, get_composite
from ..core import Composite, Hook, Stabilizer
from .assignment import OVERRIDE, RuleAssignment
from .config import CANONIZERS
from .rule_registry import rule_name, rule_params

#: a composite as ``config.composite_spec`` gives it: (registered name, keywords) or None
CompositeSpec = tuple[str, dict[str, Any]] | None


def _override_groups(assignment: RuleAssignment) -> list[tuple[tuple[str, ...], Hook | None]]:
    """Modules with an override, grouped by identical rule (in module order)."""
    groups: list[tuple[list[str], Hook | None]] = []
    for name, effective in assignment.effective_rules().items():
        if effective.origin != OVERRIDE:
            continue
        for names, rule in groups:
            if type(rule) is type(effective.rule) and rule == effective.rule:
                names.append(name)
                break
        else:
            groups.append(([name], effective.rule))
    return [(tuple(names), rule) for names, rule in groups]


def to_composite(
    assignment: RuleAssignment, spec: CompositeSpec, canonizers: str | None
) -> Composite:
    """A composite giving every module the rule it has in ``assignment``, with fresh canonizers.

    Parameters
    ----------
    assignment : RuleAssignment
        The assignment; every module with an override is named in a ``NameMapComposite``.
    spec : tuple of (str, dict) or None
        The base composite (registered name and keywords), or None.
    canonizers : str or None
        The registered canonizer set whose factory makes the composite's canonizers.

    Returns
    -------
    Composite
        A ``MixedComposite`` to use on another copy of the model (or after the live explanation
        is closed: its canonizers are still applied while it is open).
    """
    members: list[Composite] = []
    groups = [
        (names, Hook() if rule is None else rule) for names, rule in _override_groups(assignment)
    ]
    if groups:
        members.append(NameMapComposite(groups))
    if spec is not None:
        members.append(get_composite(spec[0])(**spec[1]))
    fresh = [] if canonizers is None else CANONIZERS[canonizers].factory()
    return MixedComposite(members, canonizers=fresh)


def _code(value: Any, imports: set[str]) -> str:
    if isinstance(value, torch.Tensor):
        imports.add("import torch")
        return f"torch.tensor({value.tolist()!r})"
    if isinstance(value, Stabilizer):
        imports.add("from lrp_core.core import Stabilizer")
        args = ", ".join(f"{k}={v!r}" for k, v in vars(value).items())
        return f"Stabilizer({args})"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_code(v, imports) for v in value) + "]"
    return repr(value)


def _rule_code(rule: Hook | None, imports: set[str]) -> str:
    if rule is None:
        imports.add("from lrp_core.core import Hook")
        return "Hook()"
    cls = type(rule)
    # built-in rules by their public module (``Pass`` is defined in a private one)
    module = "lrp_core.rules" if getattr(rules, cls.__name__, None) is cls else cls.__module__
    imports.add(f"from {module} import {cls.__name__}")
    args = ", ".join(f"{k}={_code(v, imports)}" for k, v in rule_params(rule).items())
    rule_name(rule)  # raises for unregistered classes, which a snippet could not rebuild
    return f"{cls.__name__}({args})"


def to_code(assignment: RuleAssignment, spec: CompositeSpec, canonizers: str | None) -> str:
    """Python source that builds ``to_composite(...)`` with ``lrp_core`` (as ``composite``).

    Parameters are those of ``to_composite``.
    """
    imports = {"from lrp_core.composites import MixedComposite"}
    members = []
    groups = _override_groups(assignment)
    if groups:
        imports.add("from lrp_core.composites import NameMapComposite")
        lines = [f"        ({names!r}, {_rule_code(rule, imports)})," for names, rule in groups]
        members.append("    NameMapComposite([\n" + "\n".join(lines) + "\n    ]),")
    if spec is not None:
        name, params = spec
        cls = get_composite(name)
        imports.add(f"from {cls.__module__} import {cls.__name__}")
        args = ", ".join(f"{k}={_code(v, imports)}" for k, v in params.items())
        members.append(f"    {cls.__name__}({args}),")
    code = "[]"
    if canonizers is not None:
        imports.add(CANONIZERS[canonizers].imports)
        code = CANONIZERS[canonizers].expression
    body = "\n".join(members)
    return (
        "\n".join(sorted(imports))
        + f"\n\ncomposite = MixedComposite([\n{body}\n], canonizers={code})\n"
    )
