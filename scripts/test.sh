#!/usr/bin/env bash
# Set up (idempotent) and run the default test suite. pytest's "no tests collected" (exit 5) fails.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit $?
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
# Static checks first (configured in pyproject.toml); a finding fails the run.
.venv/bin/ruff check . || exit 1
.venv/bin/lint-imports --no-cache --no-logo || exit 1
.venv/bin/ruff format --check . || exit 1
.venv/bin/python -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
exit "$rc"
