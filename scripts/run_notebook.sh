#!/usr/bin/env bash
# Run notebooks end to end without a browser (headless kernel, nbclient's `jupyter execute`).
# Outputs are not written back: the notebooks stay stored without outputs.
# Exits non-zero when any cell of any notebook raises, or a cell runs longer than the timeout.
#
# Usage: bash scripts/run_notebook.sh [NOTEBOOK.ipynb ...]   (default: every notebook in notebooks/)
# Environment: PY (default .venv/bin/python of this repo), NOTEBOOK_TIMEOUT_S per cell (default 300).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
PY=${PY:-"$REPO/.venv/bin/python"}
TIMEOUT=${NOTEBOOK_TIMEOUT_S:-300}

if [ "$#" -eq 0 ]; then
    set -- "$REPO"/notebooks/*.ipynb
fi

for notebook in "$@"; do
    if [ ! -f "$notebook" ]; then
        echo "run_notebook.sh: no such notebook: $notebook" >&2
        exit 2
    fi
    start=$(date +%s)
    if ! "$PY" -m jupyter execute --timeout="$TIMEOUT" --kernel_name=python3 "$notebook"; then
        echo "FAILED: $notebook" >&2
        exit 1
    fi
    echo "ok: $notebook ($(($(date +%s) - start)) s)"
done
