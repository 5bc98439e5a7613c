"""Rules by name: the built-in rules, custom rules registered by the user, and their parameters.

A rule is named by its registered name (the class name for the built-ins); ``"Gradient"`` names
the plain gradient (no rule). A rule's parameters are its constructor keywords, read through
``hyperparameters()`` (rules without it have no parameters), so ``make_rule(rule_name(r),
rule_params(r))`` re-creates ``r``. Nothing here pickles or evaluates code.
"""

from __future__ import annotations

import inspect
from typing import Any

from .. import rules
from ..core import Hook

#: name of the plain gradient (the absence of a rule)
GRADIENT = "Gradient"

_BUILT_IN = (*rules.LRP_RULES, *rules.GRADIENT_RULES)
RULES: dict[str, type[Hook]] = {cls.__name__: cls for cls in _BUILT_IN}


class UnknownRuleError(ValueError):
    """A rule name that is not registered, or a rule whose class has no registered name."""


class RuleParameterError(ValueError):
    """A parameter a rule does not take or rejects; ``param`` names it (None: unknown which)."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


def register_rule(name: str, cls: type[Hook]) -> type[Hook]:
    """Register the custom rule class ``cls`` (a subclass of ``lrp_core.core.Hook``) as ``name``.

    Its parameters are its constructor keywords; give it ``hyperparameters()`` returning them (as
    the built-in rules do) so that its parameters can be edited and exported.
    Raises ``TypeError`` for a non-Hook class and ``ValueError`` for a taken or bad name.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"register_rule: the name must be an identifier, got {name!r}")
    if not (isinstance(cls, type) and issubclass(cls, Hook)):
        raise TypeError(f"register_rule({name!r}): {cls!r} is not a subclass of lrp_core.core.Hook")
    if name == GRADIENT or RULES.get(name, cls) is not cls:
        raise ValueError(f"register_rule: the name {name!r} is already taken; choose another")
    RULES[name] = cls
    return cls


def unregister_rule(name: str) -> None:
    """Forget the custom rule registered as ``name`` (built-in rules stay)."""
    if any(cls.__name__ == name for cls in _BUILT_IN):
        raise ValueError(f"unregister_rule: {name!r} is a built-in rule")
    RULES.pop(name, None)


def rule_name(rule: Hook | None) -> str:
    """The registered name of ``rule``'s class (``"Gradient"`` for None).

    Raises ``UnknownRuleError`` if the class is not registered.
    """
    if rule is None:
        return GRADIENT
    for name, cls in RULES.items():
        if type(rule) is cls:
            return name
    raise UnknownRuleError(
        f"the rule class {type(rule).__name__} is not registered; call "
        f"lrp_core.live.register_rule('{type(rule).__name__}', {type(rule).__name__})"
    )


def rule_label(rule: Hook | None) -> str:
    """The registered name of ``rule``'s class, or the class name for unregistered rules."""
    try:
        return rule_name(rule)
    except UnknownRuleError:
        return type(rule).__name__


def rule_params(rule: Hook | None) -> dict[str, Any]:
    """The constructor keywords of ``rule`` ({} for the plain gradient or rules without any)."""
    if rule is None or not callable(getattr(rule, "hyperparameters", None)):
        return {}
    return dict(rule.hyperparameters())


def parameter_names(name: str) -> list[str]:
    """The constructor keywords of the rule registered as ``name``."""
    if name == GRADIENT:
        return []
    signature = inspect.signature(rule_class(name).__init__)
    return [
        p.name
        for p in list(signature.parameters.values())[1:]
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]


def rule_class(name: str) -> type[Hook]:
    """The class registered as ``name``; raises ``UnknownRuleError`` listing the known names."""
    try:
        return RULES[name]
    except (KeyError, TypeError):
        known = ", ".join([GRADIENT, *sorted(RULES)])
        raise UnknownRuleError(f"unknown rule {name!r}; known rules: {known}") from None


def make_rule(name: str, params: dict[str, Any] | None = None) -> Hook | None:
    """A new rule of the class registered as ``name`` with keywords ``params`` (None: Gradient).

    Raises ``UnknownRuleError`` for an unknown name and ``ValueError`` naming the parameter for an
    unknown keyword or one the rule rejects.
    """
    params = dict(params or {})
    if name == GRADIENT:
        if params:
            raise ValueError(f"the plain gradient takes no parameters, got {sorted(params)}")
        return None
    cls = rule_class(name)
    allowed = parameter_names(name)
    unknown = [key for key in params if key not in allowed]
    if unknown:
        raise RuleParameterError(
            f"{name} has no parameter {unknown[0]!r}; its parameters are {allowed or 'none'}",
            unknown[0],
        )
    try:
        return cls(**params)
    except TypeError as error:  # a required keyword is missing
        raise RuleParameterError(f"{name}: {error}") from None
    except ValueError as error:
        message = str(error)
        named = [k for k in params if message.startswith(k)] or [k for k in params if k in message]
        raise RuleParameterError(f"{name}: {message}", named[0] if named else None) from None


def with_params(rule: Hook, **changes: Any) -> Hook:
    """A new rule of ``rule``'s class with its parameters, some replaced by ``changes``."""
    name = rule_name(rule)
    return make_rule(name, {**rule_params(rule), **changes})
