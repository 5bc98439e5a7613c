"""Import the reference library Zennit as a black-box oracle for the parity tests.

Zennit's package ``__init__`` imports its torchvision canonizers, which need
``torchvision.models.resnet.{BasicBlock, Bottleneck}``. torchvision is deliberately not installed,
so a minimal stand-in package is placed into ``sys.modules`` just for the import and removed
again afterwards, so that no other test sees a fake torchvision. Zennit's own
``zennit.torchvision`` keeps references to the dummy classes; the parity tests never use it.

Use: ``zennit = load()`` at module level of a parity test file. The parity tests are written
against Zennit ``REFERENCE_VERSION``: when it is not installed (or another version is), the whole
module is skipped with the reason, or, with ``LRP_CORE_REQUIRE_ZENNIT=1`` in the environment (as
``scripts/test.sh`` sets it), fails, so that CI never skips them silently. Zennit is only ever
called through its public API, as a black box; its source is not read.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
import types
from types import ModuleType

import pytest

REFERENCE_VERSION = "1.0.0"
REQUIRE_VARIABLE = "LRP_CORE_REQUIRE_ZENNIT"

ZENNIT_SUBMODULES = (
    "core",
    "rules",
    "composites",
    "canonizers",
    "attribution",
    "image",
    "cmap",
    "types",
    "layer",
    "torchvision",
)


def _stand_in_torchvision() -> dict[str, ModuleType]:
    """A fake ``torchvision`` with just the names Zennit's import asks for (found by trial)."""
    torchvision = ModuleType("torchvision")
    models = ModuleType("torchvision.models")
    resnet = ModuleType("torchvision.models.resnet")
    ops = ModuleType("torchvision.ops")
    torchvision.__path__ = []  # mark as packages so submodule imports resolve via sys.modules
    models.__path__ = []
    resnet.BasicBlock = type("BasicBlock", (), {})
    resnet.Bottleneck = type("Bottleneck", (), {})
    ops.FrozenBatchNorm2d = type(
        "FrozenBatchNorm2d", (), {}
    )  # Zennit 1.0 lists it in types.BatchNorm
    torchvision.models = models
    torchvision.ops = ops
    models.resnet = resnet
    return {module.__name__: module for module in (torchvision, models, resnet, ops)}


def _check_version() -> None:
    """Skip (or, when required, fail) the calling module unless Zennit REFERENCE_VERSION is
    installed."""
    try:
        version = importlib.metadata.version("zennit")
    except importlib.metadata.PackageNotFoundError:
        version = None
    if version == REFERENCE_VERSION:
        return
    found = "not installed" if version is None else f"{version} is installed"
    reason = (
        f"the parity tests need zennit=={REFERENCE_VERSION} (the reference library), {found}: "
        f"pip install --no-deps --ignore-requires-python zennit=={REFERENCE_VERSION}"
    )
    if os.environ.get(REQUIRE_VARIABLE) == "1":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def load() -> types.SimpleNamespace:
    """Import Zennit's public submodules; skip the calling module when Zennit REFERENCE_VERSION
    is not installed (fail instead when ``LRP_CORE_REQUIRE_ZENNIT=1``)."""
    _check_version()
    stand_ins = _stand_in_torchvision()
    shadowed = {name: sys.modules[name] for name in stand_ins if name in sys.modules}
    if shadowed:
        stand_ins = {}  # a real torchvision is present: use it
    sys.modules.update(stand_ins)
    try:
        modules = {name: importlib.import_module(f"zennit.{name}") for name in ZENNIT_SUBMODULES}
    finally:
        for name, module in stand_ins.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]
    return types.SimpleNamespace(**modules)
