"""Locating the front-end bundle that esbuild writes into ``lrp_widgets/static/``."""

from __future__ import annotations

from functools import cache
from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"


class BundleMissingError(RuntimeError):
    """The compiled front end (``lrp_widgets/static/``) is missing: the package was not built."""


def bundle_path(filename: str) -> Path:
    """Return the path of one bundle file, e.g. ``"explorer.js"``.

    Raises
    ------
    BundleMissingError
        the file does not exist; the message says how to build it.
    """
    path = STATIC_DIR / filename
    if not path.is_file():
        raise BundleMissingError(
            f"The widget front end {path} is missing, so the widget cannot be displayed. "
            "Build it with `cd js && npm install && npm run build`, or reinstall the package "
            'from source with `pip install -e ".[test]"` (needs Node.js and npm; the build hook '
            "runs npm for you). Wheels from `pip wheel .` already contain it."
        )
    return path


@cache
def _read(path: Path, mtime_ns: int) -> str:
    # Keyed by modification time so a rebuilt bundle is picked up without restarting the kernel.
    del mtime_ns
    return path.read_text(encoding="utf-8")


def bundle_text(filename: str) -> str:
    """Return the contents of one bundle file (see :func:`bundle_path`)."""
    path = bundle_path(filename)
    return _read(path, path.stat().st_mtime_ns)
