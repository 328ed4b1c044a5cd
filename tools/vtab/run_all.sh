#!/usr/bin/env bash
# Train every VTAB-1K task (or FGVC dataset) for every seed, one run after another.
#   tools/vtab/run_all.sh [--val] [--bench vtab1k|fgvc] [--method cvpt|vpt|linear] [--seeds "0 1 2"]
#                         [--gpus 8] [--slurm PARTITION] [--root work_dirs/vtab] [-- extra train args]
# Final runs: train800val200 (FGVC: train+val) -> test accuracy at the end of training.
# --val:      train800 (FGVC: train) -> val200 (FGVC: val), for choosing lr / prompts.
# Then: python tools/vtab/summarize.py work_dirs/vtab --method cvpt --seeds 0 1 2
set -euo pipefail
cd "$(dirname "$0")/../.."
BENCH=vtab1k METHOD=cvpt SEEDS="0" GPUS=1 SLURM="" ROOT=work_dirs/vtab VAL=0 EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --val) VAL=1; shift ;;
    --bench) BENCH=$2; shift 2 ;;
    --method) METHOD=$2; shift 2 ;;
    --seeds) SEEDS=$2; shift 2 ;;
    --gpus) GPUS=$2; shift 2 ;;
    --slurm) SLURM=$2; shift 2 ;;
    --root) ROOT=$2; shift 2 ;;
    --) shift; EXTRA=("$@"); break ;;
    *) echo "run_all.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ "$VAL" = 1 ]; then
  ROOT=$ROOT-val
  if [ "$BENCH" = vtab1k ]; then TRAIN=train800 EVAL=val200; else TRAIN=train EVAL=val; fi
  SPLITS=(train_dataloader.dataset.split=$TRAIN val_dataloader.dataset.split=$EVAL
          test_dataloader.dataset.split=$EVAL)
else
  SPLITS=()
fi
for cfg in configs/$BENCH/${METHOD}_vitb_$BENCH-*.py; do
  task=${cfg##*-}; task=${task%.py}
  for seed in $SEEDS; do
    work=$ROOT/$METHOD/$BENCH/$task/seed$seed
    args=(--work-dir "$work" --cfg-options randomness.seed=$seed "${SPLITS[@]}" "${EXTRA[@]}")
    echo "[run_all] $task seed $seed -> $work"
    if [ -n "$SLURM" ]; then
      GPUS=$GPUS GPUS_PER_NODE=$GPUS bash tools/slurm_train.sh "$SLURM" "$METHOD-$task-$seed" "$cfg" "${args[@]}"
    elif [ "$GPUS" -gt 1 ]; then
      bash tools/dist_train.sh "$cfg" "$GPUS" "${args[@]}"
    else
      python tools/train.py "$cfg" "${args[@]}"
    fi
  done
done
