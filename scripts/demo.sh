#!/usr/bin/env bash
# The main job: set everything up and open JupyterLab on the quickstart notebook.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
ALLOW_ROOT=()
[ "$(id -u)" = "0" ] && ALLOW_ROOT=(--allow-root)
exec .venv/bin/jupyter lab "${ALLOW_ROOT[@]}" notebooks/01_quickstart.ipynb "$@"
