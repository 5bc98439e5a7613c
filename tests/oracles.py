"""Skipping a test whose oracle or second environment is missing, except where it must run.

Outside CI a missing test-only package (an oracle library, a second environment) skips the tests
that need it. ``scripts/test.sh`` sets ``LRP_CORE_REQUIRE_ORACLES=1``: there a missing one fails
the run instead, so a broken installation cannot pass as a green suite.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

REQUIRE_VARIABLE = "LRP_CORE_REQUIRE_ORACLES"


def require(available: bool, what: str) -> None:
    """Skip the calling test module unless ``available``; with ``LRP_CORE_REQUIRE_ORACLES=1``
    fail instead. ``what`` says what is missing and how it is installed."""
    if available:
        return
    if os.environ.get(REQUIRE_VARIABLE) == "1":
        pytest.fail(f"{what} ({REQUIRE_VARIABLE}=1: the test command must run these tests)")
    pytest.skip(what, allow_module_level=True)


def require_module(name: str, install: str) -> None:
    """:func:`require` the importable module ``name`` (``install``: how to get it)."""
    require(importlib.util.find_spec(name) is not None, f"{name} is not installed ({install})")
