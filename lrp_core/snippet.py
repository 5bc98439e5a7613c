"""A live explanation's assignment as a composite: an object for scripts, or Python source.

The composite is ``MixedComposite([NameMapComposite(overrides), base], canonizers=...)``: every
module whose effective rule comes from an override is listed by name (``lrp_core.core.Hook()``
stands for the plain gradient), all others fall through to the base composite.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from .assignment import OVERRIDE
from .config import CANONIZERS, canonizer_set_name, composite_spec
from .core import Composite, Hook, Stabilizer
from .rule_registry import rule_name, rule_params

if TYPE_CHECKING:
    from .live import LiveExplanation


def _override_groups(live: LiveExplanation) -> list[tuple[tuple[str, ...], Hook | None]]:
    """Modules with an override, grouped by identical rule (in module order)."""
    groups: list[tuple[list[str], Hook | None]] = []
    for name, effective in live.assignment.effective_rules().items():
        if effective.origin != OVERRIDE:
            continue
        for names, rule in groups:
            if type(rule) is type(effective.rule) and rule == effective.rule:
                names.append(name)
                break
        else:
            groups.append(([name], effective.rule))
    return [(tuple(names), rule) for names, rule in groups]


def _fresh_canonizers(live: LiveExplanation) -> list:
    name = canonizer_set_name(live.canonizers)
    return [] if name is None else CANONIZERS[name].factory()


def to_composite(live: LiveExplanation) -> Composite:
    """A composite giving every module the rule it has in ``live``, with fresh canonizers.

    Use it on another copy of the model, or after ``live.close()`` (the canonizers of ``live``
    are still applied while it is open).
    """
    from .composites import MixedComposite, NameMapComposite

    members: list[Composite] = []
    groups = [(names, Hook() if rule is None else rule) for names, rule in _override_groups(live)]
    if groups:
        members.append(NameMapComposite(groups))
    if live.composite is not None:
        from .composites import get_composite

        name, params = composite_spec(live)
        members.append(get_composite(name)(**params))
    return MixedComposite(members, canonizers=_fresh_canonizers(live))


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
    imports.add(f"from {cls.__module__} import {cls.__name__}")
    args = ", ".join(f"{k}={_code(v, imports)}" for k, v in rule_params(rule).items())
    rule_name(rule)  # raises for unregistered classes, which a snippet could not rebuild
    return f"{cls.__name__}({args})"


def to_code(live: LiveExplanation) -> str:
    """Python source that builds ``to_composite(live)`` with ``lrp_core`` (as ``composite``)."""
    imports = {"from lrp_core.composites import MixedComposite"}
    members = []
    groups = _override_groups(live)
    if groups:
        imports.add("from lrp_core.composites import NameMapComposite")
        lines = [f"        ({names!r}, {_rule_code(rule, imports)})," for names, rule in groups]
        members.append("    NameMapComposite([\n" + "\n".join(lines) + "\n    ]),")
    if live.composite is not None:
        _, params = composite_spec(live)
        cls = type(live.composite)
        imports.add(f"from {cls.__module__} import {cls.__name__}")
        args = ", ".join(f"{k}={_code(v, imports)}" for k, v in params.items())
        members.append(f"    {cls.__name__}({args}),")
    canonizers = "[]"
    name = canonizer_set_name(live.canonizers)
    if name is not None:
        imports.add(CANONIZERS[name].imports)
        canonizers = CANONIZERS[name].expression
    body = "\n".join(members)
    return (
        "\n".join(sorted(imports))
        + f"\n\ncomposite = MixedComposite([\n{body}\n], canonizers={canonizers})\n"
    )
