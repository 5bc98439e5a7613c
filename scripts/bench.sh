#!/usr/bin/env bash
# Runs every benchmark (engine, live re-runs, Compare, the Explorer in real JupyterLab), one after
# the other, with one torch thread so that other work on the machine distorts the ratios least.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/setup.sh --browser
# the reference library, only to time it beside the engine (never a dependency of the project)
.venv/bin/python -m pip install --quiet --no-deps --ignore-requires-python "zennit==1.0.0"
export OMP_NUM_THREADS=1
for bench in bench_engine bench_live bench_compare; do
  echo "== $bench"
  .venv/bin/python "benchmarks/$bench.py" --threads 1
done
# AttnLRP on a Llama-shaped model, beside LXT 2.1 (test-only, needs transformers < 5)
.venv/bin/python -m pip install --quiet "transformers>=4.57,<5"
.venv/bin/python -m pip install --quiet --no-deps "lxt==2.1"
echo "== bench_transformer"
PYTHONPATH=. .venv/bin/python benchmarks/bench_transformer.py --threads 1
echo "== bench_explorer"
.venv/bin/python benchmarks/bench_explorer.py
echo "== bench_tree"
.venv/bin/python benchmarks/bench_tree.py --page tree
.venv/bin/python benchmarks/bench_tree.py --page lab
echo "== bench_datasets"
.venv/bin/python benchmarks/bench_datasets.py throughput --samples 2000 --repeats 2
.venv/bin/python benchmarks/bench_datasets.py memory --sizes 2000 20000
echo "== bench_notebooks"
.venv/bin/python benchmarks/bench_notebooks.py
