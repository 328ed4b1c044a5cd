#!/usr/bin/env bash
# `make demo-m2f`: train the Mask2Former config (frozen CVPT ViT-B/16, head narrowed, CPU) on
# the embedded ADE20K sample, evaluate mIoU and paint prediction overlays.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
WORK=${WORK:-work_dirs/demo_m2f}
CONFIG=configs/demo/cvpt_vitb_mask2former_ade20k-sample.py
start=$(date +%s)

$PY tools/misc/make_samples.py ade20k --out data/samples
echo "[demo-m2f] NOTE: no pretrained weights can be downloaded on this machine; the ViT-B/16"
echo "[demo-m2f]       backbone keeps its random initialisation (frozen). With the ImageNet-21k"
echo "[demo-m2f]       weights (README: Pretrained weights) drop the init_cfg override in $CONFIG."
rm -rf "$WORK"
$PY tools/train.py "$CONFIG" --work-dir "$WORK"
ckpt=$(cat "$WORK/last_checkpoint")
$PY tools/test.py "$CONFIG" "$ckpt" --work-dir "$WORK/test" \
  --show-dir "$WORK/overlays" 2>&1 | tee "$WORK/test.log" | grep -E "Iter\(test\)"
miou=$(grep -oE "mIoU: [0-9.]+" "$WORK/test.log" | tail -n 1)
[ -n "$miou" ] || { echo "[demo-m2f] ERROR: no mIoU in $WORK/test.log" >&2; exit 1; }
echo
echo "[demo-m2f] done in $(( $(date +%s) - start )) s; sample validation $miou"
echo "[demo-m2f] training log:  $(ls "$WORK"/2*/2*.log | head -n 1)"
echo "[demo-m2f] checkpoint:    $ckpt"
echo "[demo-m2f] overlays:      $WORK/overlays/vis_data/vis_image/ ($(ls "$WORK"/overlays/vis_data/vis_image | wc -l) PNGs: ground truth | prediction)"
