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
# and the other oracles (LXT, the transformers 5 environment): missing ones fail, not skip
export LRP_CORE_REQUIRE_ORACLES=1

# The transformer oracle (tests/lrp_core/test_attnlrp_oracle.py): LXT 2.1, test-only, without its
# requirements; it imports only with transformers < 5 (its ViT patches also want torchvision, for
# which the oracle script puts a stand-in module in place).
"$PY" -m pip install --quiet "transformers>=4.57,<5" \
    && "$PY" -m pip install --quiet --no-deps "lxt==2.1" \
    || echo "transformers/lxt could not be installed: the LXT oracle tests will fail"

# A second environment with transformers 5 (tests/lrp_core/test_transformers5.py runs the same
# code there): torch pinned as in setup.sh, transformers 5, numpy; the project is not installed
# in it (the test puts the checkout on its path).
TF5=.venv-tf5
if ! "$TF5/bin/python" -c "import transformers, sys; sys.exit(transformers.__version__[0] != '5')" \
    >/dev/null 2>&1; then
    { python3 -m venv "$TF5" \
        && "$TF5/bin/python" -m pip install --quiet "torch==2.13.0" "transformers>=5,<6" numpy; } \
        || echo "the transformers 5 environment could not be made: its test will fail"
fi

echo "== ruff"
"$PY" -m ruff check .
"$PY" -m ruff format --check .

echo "== front-end type check and lint (biome)"
# npm ci also refreshes a node_modules made before a dev dependency was added (e.g. biome).
(cd js && { [ -x node_modules/.bin/biome ] || npm ci --silent; } \
    && npm run --silent typecheck && npm run --silent lint)

echo "== pytest"
"$PY" -m pytest "$@"
