#!/usr/bin/env bash
# Install Debian's `chromium` for the JupyterLab browser test (tests/test_jupyterlab.py drives it with
# Playwright through `executable_path`; Playwright's own browser download is never used). Used by .ci/run.
# Does nothing when chromium is already on PATH; skips with a message (exit 0) where it cannot install
# (not root, or no apt-get): the browser test then skips and says why.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install_browser: chromium not installed (needs root and apt-get); the JupyterLab browser test will skip"
  exit 0
fi
echo "installing chromium (apt-get) ..."
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
if ! { apt-get update && apt-get install -y --no-install-recommends chromium; } >"$log" 2>&1; then
  tail -n 20 "$log"
  echo "error: installing chromium failed (full log: $log)" >&2
  exit 1
fi
rm -f "$log"
echo "chromium ready: $(chromium --version 2>/dev/null || echo '?')"
