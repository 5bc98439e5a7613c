"""Running front-end modules (``js/src/**/*.ts``) in Node.js: the module is bundled with the
project's esbuild, then a small ESM script imports it, reads JSON cases from stdin and writes
JSON answers. Tests skip, with the reason, without Node.js or ``js/node_modules``."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ESBUILD = REPO / "js" / "node_modules" / ".bin" / "esbuild"
NODE = shutil.which("node")


@pytest.fixture(scope="session")
def run_ts(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str, object], object]:
    """``run_ts(module, script, cases)``: bundle ``js/src/<module>.ts`` as ``./module.mjs``,
    run ``script`` (ESM; reads the JSON ``cases`` from stdin, prints JSON) and return its answer."""
    if NODE is None or not ESBUILD.exists():
        pytest.skip("needs Node.js and the front end's dev dependencies (`cd js && npm install`)")
    folder = tmp_path_factory.mktemp("ts-modules")

    def run(module: str, script: str, cases: object) -> object:
        bundle = folder / f"{module.replace('/', '_')}.mjs"
        if not bundle.exists():
            subprocess.run(
                [
                    str(ESBUILD),
                    str(REPO / "js" / "src" / f"{module}.ts"),
                    "--bundle",
                    "--format=esm",
                    "--platform=node",
                    f"--outfile={bundle}",
                    "--log-level=warning",
                ],
                check=True,
            )
        runner = folder / f"run_{bundle.stem}.mjs"
        runner.write_text(script.replace("./module.mjs", f"./{bundle.name}"))
        done = subprocess.run(
            [NODE, str(runner)],
            input=json.dumps(cases),
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return json.loads(done.stdout)

    return run
