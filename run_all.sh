#!/usr/bin/env bash
# Run the paper's pipeline: ./run_all.sh [--profile NAME] [--only STAGE] [--force | --dry-run] [--jobs N]
# The first call creates .venv and installs everything (scripts/setup_env.sh). The default profile `demo`
# runs offline on CPU in minutes; results land in runs/, tables and figures in figures/.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup_env.sh
export HF_HOME="${HF_HOME:-$PWD/.cache/huggingface}"
exec .venv/bin/python -m lrl_utils.orchestration.runner "$@"
