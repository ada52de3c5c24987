#!/usr/bin/env bash
# Run the test suite: ./tests/run.sh [pytest args]. Creates .venv first when needed (scripts/setup_env.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_env.sh
export HF_HOME="${HF_HOME:-$PWD/.cache/huggingface}" HF_HUB_OFFLINE=1 MPLBACKEND=Agg TOKENIZERS_PARALLELISM=false
# The runs' processes (`python -m lrl_utils...` in a project folder, kernels) import this checkout's lrl_utils, not
# the one the venv was installed from (a worktree that shares another checkout's .venv)
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# Two workers (pytest-xdist), a test file per worker at a time: the suite is mostly single-threaded tiny models and
# subprocesses, so the second core halves the wait (about 7.5 instead of 10.5 min on the 2-core machine). Files
# stay whole so that a module's fixtures (a SLURM cluster, a JupyterLab server, the mini grid) are built once.
# LRL_TEST_WORKERS=0 runs everything in this process (for debugging: pdb, -s)
workers=${LRL_TEST_WORKERS:-2}
if [ "$workers" = 0 ]; then
  exec .venv/bin/python -m pytest -q "$@"
fi
exec .venv/bin/python -m pytest -q -n "$workers" --dist loadfile "$@"
