#!/usr/bin/env bash
# Run the test suite: ./tests/run.sh [pytest args]. Creates .venv first when needed (scripts/setup_env.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup_env.sh
export HF_HOME="${HF_HOME:-$PWD/.cache/huggingface}" HF_HUB_OFFLINE=1 MPLBACKEND=Agg TOKENIZERS_PARALLELISM=false
# The runs' processes (`python -m lrl_utils...` in a project folder, kernels) import this checkout's lrl_utils, not
# the one the venv was installed from (a worktree that shares another checkout's .venv)
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec .venv/bin/python -m pytest -q "$@"
