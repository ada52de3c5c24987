#!/usr/bin/env bash
# Create the project's environment when it is missing or out of date:
#   .venv (python3 -m venv), the project installed editable with its dev tools, torch held at the CPU build
#   2.13.0 through constraints.txt (PIP_CONSTRAINT), the Jupyter kernel `lrl-adapt` registered inside the
#   venv, and the venv's JupyterLab set to open Python files as notebooks (jupytext's default viewer, in
#   .venv/share/jupyter/lab/settings/overrides.json; a user's own JupyterLab settings still win).
#   Re-runs only when pyproject.toml or constraints.txt change. Used by run_all.sh and tests/run.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=.venv
key=$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-12)
stamp="$VENV/.installed-$key"
if [ -f "$stamp" ]; then exit 0; fi
echo "setting up $VENV (first run: a few minutes) ..."
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
export PIP_CONSTRAINT="$PWD/constraints.txt" PIP_DISABLE_PIP_VERSION_CHECK=1
if ! "$VENV/bin/python" -m pip install -e ".[dev]" >"$VENV/install.log" 2>&1; then
  grep -v '^WARNING: Location' "$VENV/install.log" | tail -n 30
  echo "error: installing the project failed; the full log is $VENV/install.log" >&2
  exit 1
fi
"$VENV/bin/python" -m ipykernel install --sys-prefix --name lrl-adapt --display-name "Python (lrl-adapt)" >/dev/null
"$VENV/bin/jupytext-config" --settings-file "$VENV/share/jupyter/lab/settings/overrides.json" \
  set-default-viewer python >/dev/null
rm -f "$VENV"/.installed-*
touch "$stamp"
echo "environment ready: $("$VENV/bin/python" -c 'import torch, adapters; print("torch", torch.__version__, "adapters", adapters.__version__)')"
