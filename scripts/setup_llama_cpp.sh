#!/usr/bin/env bash
# llama-cpp-python for the GGUF export and the llama.cpp backend (docs/gguf.md), built from its
# source package ONCE into a cached wheel and reused: a second run (or a fresh clone sharing
# .cache) costs seconds. Also unpacks the source package's llama.cpp converter
# (convert_hf_to_gguf.py, conversion/, gguf-py/) into the cache, where evmlm.export finds it.
# Cache: the wheel in the user's cache, ${XDG_CACHE_HOME:-~/.cache}/evmlm/wheels/
# llama-cpp-python-VERSION-CPU/ (CPU: a hash of this machine's CPU flags, since llama.cpp is
# compiled for the CPU it is built on), shared by every clone on the machine like pip's own
# wheel cache; the converter in ${EVMLM_CACHE_DIR:-.cache/evmlm}/llama-cpp/VERSION/. Installed with --no-deps: its dependencies (numpy, typing-extensions,
# jinja2, diskcache) are pinned in pyproject.toml, so nothing else in .venv changes.
# Optional: setup.sh warns in one line when this fails. EVMLM_SKIP_LLAMA_CPP=1 skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${EVMLM_SKIP_LLAMA_CPP:-0}" = "1" ] && exit 0
VERSION=0.3.36
VPY=.venv/bin/python
CACHE=${EVMLM_CACHE_DIR:-.cache/evmlm}
CPU=$( (grep -m1 -E '^(flags|Features)' /proc/cpuinfo 2>/dev/null || uname -m) | sha256sum | cut -c1-12)
WHEELS="${XDG_CACHE_HOME:-$HOME/.cache}/evmlm/wheels/llama-cpp-python-$VERSION-$CPU"
SRC="$CACHE/llama-cpp/$VERSION"
SDIST="$WHEELS/llama_cpp_python-$VERSION.tar.gz"

if "$VPY" -c "import llama_cpp, sys; sys.exit(llama_cpp.__version__ != '$VERSION')" 2>/dev/null \
  && [ -f "$SRC/convert_hf_to_gguf.py" ]; then
  exit 0
fi
mkdir -p "$WHEELS" "$CACHE/llama-cpp"
LOG="$CACHE/llama-cpp/setup.log"  # pip's output: setup.sh's warning names it on failure
: > "$LOG"
pipq() { "$VPY" -m pip "$@" >> "$LOG" 2>&1; }
if [ ! -f "$SDIST" ]; then
  pipq download -q --disable-pip-version-check --no-deps --no-binary :all: \
    -d "$WHEELS" "llama-cpp-python==$VERSION"
fi
wheel=$(ls "$WHEELS"/llama_cpp_python-"$VERSION"-*.whl 2>/dev/null | head -n1 || true)
if [ -z "$wheel" ]; then
  echo "building llama-cpp-python $VERSION (compiles llama.cpp, once; ~12 min on 2 busy cores)" >&2
  tmp=$(mktemp -d "$WHEELS/.build.XXXXXX")
  CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} \
    pipq wheel -q --disable-pip-version-check --no-deps -w "$tmp" "$SDIST"
  built=$(ls "$tmp"/llama_cpp_python-"$VERSION"-*.whl | head -n1)
  mv "$built" "$WHEELS/" && rmdir "$tmp"
  wheel="$WHEELS/$(basename "$built")"
fi
pipq install -q --disable-pip-version-check --no-deps --force-reinstall "$wheel"
if [ ! -f "$SRC/convert_hf_to_gguf.py" ]; then
  tmp=$(mktemp -d "$CACHE/llama-cpp/.$VERSION.XXXXXX")
  top="llama_cpp_python-$VERSION/vendor/llama.cpp"
  tar xzf "$SDIST" -C "$tmp" --strip-components=3 \
    "$top/convert_hf_to_gguf.py" "$top/conversion" "$top/gguf-py" "$top/LICENSE"
  chmod 755 "$tmp"  # mktemp -d makes it 0700: the converter is readable like the rest of .cache
  rm -rf "$SRC" && mv "$tmp" "$SRC"
fi
"$VPY" -c "import llama_cpp" >> "$LOG" 2>&1  # a failed import fails the step (logged)
