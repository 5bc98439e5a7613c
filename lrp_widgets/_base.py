"""The base of the Explorer and Compare widgets: shared traits, errors, page commands, close().

A widget's page sends commands as custom messages ``{"type": ..., "request": n, ...}``. The base
widget receives them in one method (:meth:`LrpWidget._on_message`) and calls the widget's handler
registered for that type with the :func:`command` decorator, passing the request number as an
argument. Every message is answered: whatever the handler does, ``answered`` ends up at least
``n``, and a malformed message, an unknown type or a failing handler leaves its message in
``error`` with ``status == "error"``; nothing raises into the comm machinery.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import anywidget
import traitlets

from lrp_widgets._static import bundle_text

if TYPE_CHECKING:
    from torch import nn

    from lrp_core.live import LiveExplanation

__all__ = ["STATUSES", "LrpWidget", "command", "command_params", "load_bundle", "request_number"]

STATUSES = ("ready", "computing", "error")

Handler = Callable[[Any, dict, int], None]
T = TypeVar("T")


def command(kind: str) -> Callable[[Handler], Handler]:
    """Register the decorated method as the handler of page commands of type ``kind``.

    Parameters
    ----------
    kind : str
        The ``"type"`` of the messages it handles. The method is called as
        ``handler(content, request)`` with the message dict and its request number.
    """

    def register(method: Handler) -> Handler:
        method.command_kind = kind  # type: ignore[attr-defined]
        return method

    return register


def load_bundle(name: str) -> tuple[str, str]:
    """The widget's front end ``(javascript, css)`` from ``lrp_widgets/static/<name>.*``.

    Raises
    ------
    BundleMissingError
        The bundle was not built; the message says how to build it.
    """
    return bundle_text(f"{name}.js"), bundle_text(f"{name}.css")


def command_params(content: dict) -> dict[str, Any]:
    """The ``"params"`` object of a page command (``{}`` when it has none), as a new dict.

    Raises
    ------
    TypeError
        ``params`` is not an object.
    """
    params = content.get("params") or {}
    if not isinstance(params, dict):
        raise TypeError(f"'params' must be an object of parameter values, got {params!r}")
    return dict(params)


def request_number(value: Any) -> int:
    """The request number of a page message (0 when it has none).

    Raises
    ------
    ValueError
        ``value`` is not a non-negative integer.
    """
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise ValueError(f"'request' must be a non-negative integer, got {value!r}")
    if value < 0:
        raise ValueError(f"'request' must be a non-negative integer, got {value!r}")
    return int(value)


class LrpWidget(anywidget.AnyWidget):
    """What the Explorer and Compare share: status and error traits, page commands, close().

    Subclasses set ``_live`` (the :class:`lrp_core.live.LiveExplanation` they explain with)
    before calling ``super().__init__(bundle)``, and mark their command handlers with
    :func:`command`.

    Parameters
    ----------
    bundle : tuple of str
        The front end ``(javascript, css)``, from :func:`load_bundle`.
    """

    _esm = traitlets.Unicode().tag(sync=True)
    _css = traitlets.Unicode().tag(sync=True)

    status = traitlets.Enum(STATUSES, default_value="ready").tag(sync=True)
    """State of the widget: ``"ready"``, ``"computing"`` or ``"error"`` (``str``, default
    ``"ready"``)."""

    error = traitlets.Unicode("").tag(sync=True)
    """Message of the last error, ``""`` if none (``str``, default ``""``)."""

    answered = traitlets.Int(0).tag(sync=True)
    """Highest page request number handled, done or failed: the page sends its next request
    after this one (``int``, default 0)."""

    _handlers: ClassVar[dict[str, str]] = {}
    _live: LiveExplanation | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        handlers = dict(cls._handlers)
        for name, value in vars(cls).items():
            kind = getattr(value, "command_kind", None)
            if kind is not None:
                handlers[kind] = name
        cls._handlers = handlers

    def __init__(self, bundle: tuple[str, str]) -> None:
        esm, css = bundle
        super().__init__(_esm=esm, _css=css)
        self.on_msg(self._on_message)

    @property
    def live(self) -> LiveExplanation:
        """The live explanation behind the widget (for scripting beyond its methods)."""
        if self._live is None:
            raise RuntimeError("the widget has no live explanation")
        return self._live

    @property
    def model(self) -> nn.Module:
        """The model being explained (the same object that was passed in)."""
        return self.live.model

    def close(self) -> None:
        """Close the widget and its live explanation (hooks removed, canonizers undone, the
        model as before)."""
        if self._live is not None:
            self._live.close()
        super().close()

    # --- errors ---
    def _show_error(self, error: Exception) -> Exception:
        """Show ``error`` in the ``error``/``status`` traits; returns it (to raise)."""
        self.error = f"{type(error).__name__}: {error}"
        self.status = "error"
        return error

    def _guard(self, action: Callable[[], T]) -> T:
        """``action()``; an exception is shown (see :meth:`_show_error`) and raised again."""
        try:
            return action()
        except Exception as error:
            raise self._show_error(error) from None

    def _answer(self, request: int) -> None:
        if request:
            self.answered = max(self.answered, request)

    # --- page commands ---
    def _on_message(self, widget: Any, content: Any, buffers: list) -> None:
        """Handle one page message (the callback registered with ``on_msg``)."""
        if not isinstance(content, dict):
            self._show_error(TypeError(f"a page command must be an object, got {content!r}"))
            return
        try:
            request = request_number(content.get("request"))
        except ValueError as error:
            self._show_error(error)
            return
        try:
            self._dispatch(content, request)
        except Exception as error:  # bad message or rejected change: show it, keep working
            self._show_error(error)
        finally:
            self._answer(request)

    def _dispatch(self, content: dict, request: int) -> None:
        kind = content.get("type")
        name = self._handlers.get(kind) if isinstance(kind, str) else None
        if name is None:
            raise ValueError(
                f"unknown command type {kind!r}; this widget accepts {sorted(self._handlers)}"
            )
        getattr(self, name)(content, request)
