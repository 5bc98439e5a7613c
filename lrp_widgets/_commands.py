"""Commands the Explorer's page sends as custom messages, applied to the widget.

Each message is ``{"type": ..., "request": n, ...}``:

- ``assign``: ``names``, ``rule`` (registered name or ``"Gradient"``), ``params``, optional
  ``scope_type`` (then every leaf of that class name gets the rule, within the subtree
  ``scope_within`` if given);
- ``reset``: ``names`` go back to the composite's rule;
- ``composite``: ``name`` of a preset, ``keep_overrides``.

Failures never raise into the comm machinery: they set the widget's ``status``/``error``, and
``answered`` tells the page it may send its next request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lrp_widgets._checks import composite_key

if TYPE_CHECKING:
    from lrp_widgets.explorer import Explorer


def handle_command(explorer: Explorer, content: Any) -> None:
    """Apply one command message from the page to ``explorer`` (see the module docstring)."""
    if not isinstance(content, dict):
        return
    kind, request = content.get("type"), int(content.get("request", 0))
    try:
        if kind == "assign":
            names = explorer._names(content.get("names", []))
            rule = content.get("rule")
            params = dict(content.get("params") or {})
            scope_type = content.get("scope_type") or None
            within = content.get("scope_within") or None
            if within is not None:
                explorer._names([within])
            explorer._edit(
                lambda: explorer._assign(rule, names, scope_type, params, within),
                request,
                raise_errors=False,
            )
        elif kind == "reset":
            names = explorer._names(content.get("names", []))
            explorer._edit(
                lambda: [
                    explorer._live.remove_override(name=n)
                    for n in names
                    if explorer._live.rule_of(n).origin == "override"
                ],
                request,
                raise_errors=False,
            )
        elif kind == "composite":
            key = composite_key(str(content.get("name")))
            keep = bool(content.get("keep_overrides", True))
            explorer._edit(
                lambda: explorer._live.set_composite(key, keep_overrides=keep),
                request,
                raise_errors=False,
            )
            explorer.set_trait("composite", explorer._live.composite_name or "")
    except Exception as error:  # bad message content: show it, keep working
        explorer._fail(error, request)
