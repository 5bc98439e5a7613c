"""The oracle loader: the parity tests run against Zennit 1.0.0 or say why they do not."""

from __future__ import annotations

import sys

import pytest

from . import zennit_oracle


def test_wrong_reference_version_skips_or_fails(monkeypatch):
    """Another (or no) installed version skips the parity module with the install command; with
    LRP_CORE_REQUIRE_ZENNIT=1 (scripts/test.sh) it fails instead."""
    monkeypatch.setattr(zennit_oracle, "REFERENCE_VERSION", "0.0.0")
    monkeypatch.delenv(zennit_oracle.REQUIRE_VARIABLE, raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"zennit==0\.0\.0"):
        zennit_oracle.load()
    monkeypatch.setenv(zennit_oracle.REQUIRE_VARIABLE, "1")
    with pytest.raises(pytest.fail.Exception, match=r"zennit==0\.0\.0"):
        zennit_oracle.load()


def test_reference_loads_without_leaving_a_fake_torchvision():
    namespace = zennit_oracle.load()
    assert namespace.core.__name__ == "zennit.core"
    assert "torchvision" not in sys.modules or hasattr(sys.modules["torchvision"], "__version__")
