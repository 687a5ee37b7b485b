#!/usr/bin/env bash
# The Panoramix baseline decompiler in its own venv (.venv-panoramix), kept apart from the
# main .venv because its pinned dependencies clash with ours. evmlm runs it as a subprocess
# (evmlm.evaluate.baselines.panoramix); PUSH0 is added to its opcode table at run time.
# Safe to repeat: skipped when already installed. Set EVMLM_SKIP_PANORAMIX=1 to skip.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${EVMLM_SKIP_PANORAMIX:-0}" = "1" ] && exit 0
VERSION=0.6.1
PY=${PYTHON:-python3}
if [ -x .venv-panoramix/bin/python ] && .venv-panoramix/bin/python -c "import importlib.metadata as m, sys; sys.exit(m.version('panoramix-decompiler') != '$VERSION')" 2>/dev/null; then
  exit 0
fi
"$PY" -m venv .venv-panoramix
.venv-panoramix/bin/python -m pip install -q --disable-pip-version-check "panoramix-decompiler==$VERSION" 2>&1 | { grep -v '^WARNING: Location' || true; }
.venv-panoramix/bin/python -c "import panoramix" || { echo "error: panoramix did not install into .venv-panoramix" >&2; exit 1; }
