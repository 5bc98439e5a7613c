"""The optional extras stay optional: importing the engine never loads h5py or ray, and a missing
extra gives an error that says what to install."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def python(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_importing_lrp_core_and_its_datasets_package_loads_neither_h5py_nor_ray():
    result = python(
        "import sys, lrp_core, lrp_core.datasets, lrp_core.evaluation\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('h5py', 'ray', 'lrp_widgets')))"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_missing_extra_names_what_to_install(tmp_path):
    # sys.modules[name] = None makes `import name` fail as if it were not installed
    result = python(
        "import sys; sys.modules['h5py'] = None; sys.modules['ray'] = None\n"
        "from lrp_core.datasets import MissingExtraError, attribute_dataset\n"
        "from lrp_core.datasets._errors import optional_import\n"
        "from tests.lrp_core.datasets import fixtures\n"
        "try:\n"
        f"    attribute_dataset(fixtures.model(), fixtures.data(), None, {str(tmp_path)!r})\n"
        "except MissingExtraError as error:\n"
        "    print(error)\n"
        "try:\n"
        "    optional_import('ray', \"engine='ray'\")\n"
        "except MissingExtraError as error:\n"
        "    print(error)\n"
    )
    assert result.returncode == 0, result.stderr
    h5py_line, ray_line = result.stdout.strip().splitlines()
    assert "lrp-widgets[h5py]" in h5py_line and "HDF5" in h5py_line
    assert "lrp-widgets[ray]" in ray_line and "engine='ray'" in ray_line
    assert not any(tmp_path.iterdir())  # nothing was written
