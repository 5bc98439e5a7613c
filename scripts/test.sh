#!/usr/bin/env bash
# The whole test suite on a fresh machine: set-up, lint, JS type check and lint, unit tests,
# notebook execution and browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --browser
PY=.venv/bin/python

# The reference library Zennit 1.0.0, used only as a black-box oracle by the parity tests. It is never a
# dependency: installed without its requirements (torchvision; the tests give it a stand-in), and its
# metadata asks for a newer Python patch release than it needs. Here the parity tests must run: they
# fail (instead of skipping) if Zennit 1.0.0 is missing.
"$PY" -m pip install --quiet --no-deps --ignore-requires-python "zennit==1.0.0"
export LRP_CORE_REQUIRE_ZENNIT=1

echo "== ruff"
"$PY" -m ruff check .
"$PY" -m ruff format --check .

echo "== front-end type check and lint (biome)"
# npm ci also refreshes a node_modules made before a dev dependency was added (e.g. biome).
(cd js && { [ -x node_modules/.bin/biome ] || npm ci --silent; } \
    && npm run --silent typecheck && npm run --silent lint)

echo "== pytest"
"$PY" -m pytest "$@"
