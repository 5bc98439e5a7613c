#!/usr/bin/env bash
# Idempotent set-up of a fresh machine: virtual environment, torch (CPU wheel) first,
# the project with its test extras (this also runs the npm build of the front end),
# and Debian's chromium for the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
"$PY" -m pip install --quiet --upgrade pip

# torch first and pinned: a plain `torch` requirement could pull a multi-GB CUDA build.
if ! "$PY" -c "import torch" >/dev/null 2>&1; then
    "$PY" -m pip install --quiet "torch==2.13.0"
fi

# The project itself (editable), with test extras; the build hook runs `npm` for the bundle.
"$PY" -m pip install --quiet -e ".[test]"

if [ "${1:-}" = "--browser" ] && [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = "0" ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "chromium is missing: run 'sudo apt-get install -y chromium'" >&2
        exit 1
    fi
fi
