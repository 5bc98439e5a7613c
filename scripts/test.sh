#!/usr/bin/env bash
# The whole test suite on a fresh machine: set-up, lint, JS type check and lint, unit tests,
# notebook execution and browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --browser
PY=.venv/bin/python

# The reference library, used only as a black-box oracle by the parity tests. It is never a dependency:
# installed without its requirements (torchvision), and the parity tests skip when it is absent.
"$PY" -m pip install --quiet --no-deps "zennit==0.5.1" \
    || echo "zennit could not be installed: the parity tests will be skipped"

echo "== ruff"
"$PY" -m ruff check .
"$PY" -m ruff format --check .

echo "== front-end type check and lint (biome)"
# npm ci also refreshes a node_modules made before a dev dependency was added (e.g. biome).
(cd js && { [ -x node_modules/.bin/biome ] || npm ci --silent; } \
    && npm run --silent typecheck && npm run --silent lint)

echo "== pytest"
"$PY" -m pytest "$@"
