#!/usr/bin/env bash
# `make demo-cls`: train the VTAB-1K eurosat config (sample-sized, CPU) on the embedded
# VTAB-1K-format sample and report top-1 on its test split.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
WORK=${WORK:-work_dirs/demo_cls}
CONFIG=configs/demo/cvpt_vitb_vtab1k-sample.py
start=$(date +%s)
$PY tools/misc/make_samples.py vtab1k --out data/samples
echo "[demo-cls] NOTE: no pretrained weights can be downloaded here; the frozen ViT-B/16 keeps"
echo "[demo-cls]       its random initialisation (see README: Pretrained weights)."
rm -rf "$WORK"
$PY tools/train.py "$CONFIG" --work-dir "$WORK"
$PY tools/test.py "$CONFIG" "$WORK/epoch_10.pth" --work-dir "$WORK/test" 2>&1 \
  | tee "$WORK/test.log" | grep -E "accuracy/top1"
top1=$(grep -oE "accuracy/top1: [0-9.]+" "$WORK/test.log" | tail -n 1)
[ -n "$top1" ] || { echo "[demo-cls] ERROR: no accuracy in $WORK/test.log" >&2; exit 1; }
echo
echo "[demo-cls] done in $(( $(date +%s) - start )) s; sample test $top1"
echo "[demo-cls] log: $(ls "$WORK"/2*/2*.log | head -n 1); checkpoint: $WORK/epoch_10.pth"
