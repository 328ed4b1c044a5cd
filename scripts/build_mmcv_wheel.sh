#!/usr/bin/env bash
# Build (once) and cache an mmcv 2.1.0 wheel with compiled ops for the torch in $PY's environment.
# Usage: scripts/build_mmcv_wheel.sh PYTHON   -> prints the cached wheel's path on stdout
# (and nothing else there: progress goes to stderr, so callers can capture the path).
# mmcv 2.1.0's setup.py hard-codes -std=c++14/17, but torch >= 2.13 headers need C++20; that
# flag is the only patch. CPU ops by default; MMCV_CUDA_OPS=1 asks for CUDA ops (needs nvcc).
set -euo pipefail
PY=${1:?usage: build_mmcv_wheel.sh PYTHON}
say() { echo "[mmcv] $*" >&2; }
MMCV_VERSION=2.1.0
variant=cpu
if [ "${MMCV_CUDA_OPS:-0}" = 1 ]; then variant=cuda; fi
key=$("$PY" - "$MMCV_VERSION" "$variant" <<'PYEOF'
import sys, torch
v = torch.__version__.split('+')[0]
print(f"mmcv{sys.argv[1]}-torch{v}-py{sys.version_info[0]}{sys.version_info[1]}-{sys.argv[2]}")
PYEOF
)
cache=${MMCVPT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmcvpt}/wheels/$key
wheel=$(ls "$cache"/mmcv-*.whl 2>/dev/null | head -n 1 || true)
if [ -n "$wheel" ]; then
  say "using cached wheel $wheel"
  echo "$wheel"; exit 0
fi
say "no cached wheel for $key: building mmcv $MMCV_VERSION with $variant ops."
say "this happens once per machine and takes 10-35 min on 2 cores (11 min measured); later runs reuse the cache."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PY" -m pip download -q --no-deps --no-binary :all: --no-build-isolation \
  -d "$work" "mmcv==$MMCV_VERSION" >&2
tar xzf "$work/mmcv-$MMCV_VERSION.tar.gz" -C "$work"
src=$work/mmcv-$MMCV_VERSION
sed -i -e 's/-std=c++14/-std=c++20/g' -e 's/-std=c++17/-std=c++20/g' "$src/setup.py"
grep -q -- '-std=c++20' "$src/setup.py" || { say "ERROR: C++20 patch did not apply to $src/setup.py"; exit 1; }
if [ "$variant" = cuda ]; then export FORCE_CUDA=1; else export FORCE_CUDA=0 CUDA_VISIBLE_DEVICES=""; fi
start=$(date +%s)
MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
  "$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$work/dist" "$src" >&2
mkdir -p "$cache"
tmpdest=$(mktemp -d "$cache/.partial.XXXXXX")
cp "$work"/dist/mmcv-*.whl "$tmpdest/"
mv "$tmpdest"/mmcv-*.whl "$cache/" && rmdir "$tmpdest"
wheel=$(ls "$cache"/mmcv-*.whl | head -n 1)
say "built in $(( $(date +%s) - start )) s, cached at $wheel"
echo "$wheel"
