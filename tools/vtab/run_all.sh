#!/usr/bin/env bash
# Train every VTAB-1K task (or FGVC dataset) for every seed, one run after another.
#   tools/vtab/run_all.sh [--val] [--bench vtab1k|fgvc] [--method cvpt|vpt|linear] [--seeds "0 1 2"]
#                         [--tasks "dtd cifar"] [--prompts "1 5 10 20 50 100 200"] [--lr "1e-3 5e-3"]
#                         [--gpus 8] [--slurm PARTITION] [--root work_dirs/vtab] [--dry-run]
#                         [-- extra train args]
# Final runs: train800val200 (FGVC: train+val) -> test accuracy at the end of training.
# --val:      train800 (FGVC: train) -> val200 (FGVC: val), for choosing lr / prompts: every
#             (m, lr) of --prompts x --lr (default: the table's value) into
#             <root>-val/<method>/<bench>/<task>/m<m>_lr<lr>/seed<k>. Then
#             python tools/vtab/summarize.py <root>-val --select --commands final.sh
#             picks each task's best (m, lr) on val200 and writes the final runs.
# --prompts / --lr without --val: one value each, for the final run of a chosen (m, lr); a sweep
#             there would select on test accuracy, so it is refused.
# --tasks:    only these tasks (default: all).
# --gpus N:   N processes per run; each task keeps its table batch in total (total_batch_size in
#             its config; tools/train.py gives each GPU total / N), checked for every task first.
# --dry-run:  print the commands instead of running them.
# Then: python tools/vtab/summarize.py work_dirs/vtab --method cvpt --seeds 0 1 2
set -euo pipefail
cd "$(dirname "$0")/../.."
BENCH=vtab1k METHOD=cvpt SEEDS="0" GPUS=1 SLURM="" ROOT=work_dirs/vtab VAL=0 DRY=0 EXTRA=()
TASKS="" PROMPTS="" LRS=""
while [ $# -gt 0 ]; do
  case "$1" in
    --val) VAL=1; shift ;;
    --bench) BENCH=$2; shift 2 ;;
    --method) METHOD=$2; shift 2 ;;
    --seeds) SEEDS=$2; shift 2 ;;
    --tasks) TASKS=$2; shift 2 ;;
    --prompts) PROMPTS=$2; shift 2 ;;
    --lr) LRS=$2; shift 2 ;;
    --gpus) GPUS=$2; shift 2 ;;
    --slurm) SLURM=$2; shift 2 ;;
    --root) ROOT=$2; shift 2 ;;
    --dry-run) DRY=1; shift ;;
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
die() { echo "run_all.sh: $*" >&2; exit 2; }
if [ -n "$TASKS" ]; then
  CONFIGS=()
  for task in $TASKS; do
    cfg=configs/$BENCH/${METHOD}_vitb_$BENCH-$task.py
    [ -f "$cfg" ] || die "no config for task $task ($cfg)"
    CONFIGS+=("$cfg")
  done
else
  CONFIGS=(configs/$BENCH/${METHOD}_vitb_$BENCH-*.py)
fi
[ -f "${CONFIGS[0]}" ] || die "no configs match ${CONFIGS[0]}"
words() { set -f; set -- $1; set +f; echo $#; }
if [ "$VAL" = 0 ] && { [ "$(words "$PROMPTS")" -gt 1 ] || [ "$(words "$LRS")" -gt 1 ]; }; then
  die "a --prompts/--lr sweep needs --val: choosing among runs by their test accuracy selects" \
      "on the test set. Sweep on val200 (--val), then run the chosen values" \
      "(python tools/vtab/summarize.py ROOT-val --select)"
fi
for m in $PROMPTS; do
  [[ "$m" =~ ^[0-9]+$ ]] || die "--prompts takes whole numbers, got $m"
  [ "$METHOD" != linear ] || [ "$m" = 0 ] || die "--method linear has no prompts (--prompts $m)"
done
for lr in $LRS; do
  [[ "$lr" =~ ^[0-9.]+(e-?[0-9]+)?$ ]] || die "--lr takes numbers such as 1e-3, got $lr"
done

# The total batch of a run: the extra args' total_batch_size=N, else the config's; an
# explicit train_dataloader.batch_size=B in the extra args is per GPU (total B x GPUs).
OVERRIDE="" PER_GPU=""
for arg in "${EXTRA[@]}"; do
  case "$arg" in
    total_batch_size=*) OVERRIDE=${arg#total_batch_size=} ;;
    train_dataloader.batch_size=*) PER_GPU=${arg#train_dataloader.batch_size=} ;;
  esac
done
total_batch() {
  if [ -n "$PER_GPU" ]; then echo $((PER_GPU * GPUS))
  elif [ -n "$OVERRIDE" ]; then echo "$OVERRIDE"
  else sed -n 's/^total_batch_size = \([0-9]*\).*/\1/p' "$1"; fi
}
# Check every task before the first run starts, not hours into the sweep.
BAD=() GCD=0
for cfg in "${CONFIGS[@]}"; do
  total=$(total_batch "$cfg")
  [ -n "$total" ] || continue
  a=$GCD b=$total; while [ "$b" != 0 ]; do t=$((a % b)); a=$b; b=$t; done; GCD=$a
  if [ $((total % GPUS)) != 0 ]; then task=${cfg##*-}; BAD+=("${task%.py} ($total)"); fi
done
if [ ${#BAD[@]} -gt 0 ]; then
  echo "run_all.sh: --gpus $GPUS does not divide the total batch of ${BAD[*]}; use a GPU count" \
       "that divides $GCD, or set -- --cfg-options total_batch_size=N (and the lr) yourself" >&2
  exit 2
fi

run() {
  if [ "$DRY" = 1 ]; then printf '%q ' "$@"; echo; else "$@"; fi
}
# A value written in a generated config (configs/*/..._vitb_*-<task>.py).
config_value() { sed -n "s/.*\b$2=\([^,)]*\).*/\1/p" "$1" | head -n 1; }
for cfg in "${CONFIGS[@]}"; do
  task=${cfg##*-}; task=${task%.py}
  total=$(total_batch "$cfg")
  table_m=$(config_value "$cfg" num_prompts) table_lr=$(config_value "$cfg" lr)
  start=$(config_value "$cfg" start_factor)
  for m in ${PROMPTS:-$table_m}; do
    for lr in ${LRS:-$table_lr}; do
      # --prompts / --lr as cfg-options; a new lr keeps the table's warm-up start lr (the
      # LinearLR start_factor is relative to the lr).
      CHOSEN=() name=$task dir=$ROOT/$METHOD/$BENCH/$task
      [ -z "$PROMPTS" ] || CHOSEN+=(model.backbone.num_prompts=$m)
      [ -z "$LRS" ] || CHOSEN+=(optim_wrapper.optimizer.lr=$lr param_scheduler.0.start_factor=$(
        awk -v f="$start" -v a="$table_lr" -v b="$lr" 'BEGIN { printf "%.6g", f * a / b }'))
      if [ "$VAL" = 1 ]; then
        name="$task m$m lr $lr" dir=$dir/m${m}_lr$lr
      elif [ ${#CHOSEN[@]} -gt 0 ]; then
        name="$task (m $m, lr $lr)"
      fi
      for seed in $SEEDS; do
        work=$dir/seed$seed
        args=(--work-dir "$work" --cfg-options randomness.seed=$seed "${SPLITS[@]}" "${CHOSEN[@]}"
              "${EXTRA[@]}")
        echo "[run_all] $name seed $seed -> $work (total batch ${total:-?}: $GPUS GPU(s) x ${total:+$((total / GPUS))})"
        if [ -n "$SLURM" ]; then
          job=$METHOD-$task-$seed; [ "$VAL" = 0 ] || job=$METHOD-$task-m${m}_lr$lr-$seed
          run env GPUS=$GPUS GPUS_PER_NODE=${GPUS_PER_NODE:-$((GPUS < 8 ? GPUS : 8))} \
            bash tools/slurm_train.sh "$SLURM" "$job" "$cfg" "${args[@]}"
        elif [ "$GPUS" -gt 1 ]; then
          run bash tools/dist_train.sh "$cfg" "$GPUS" "${args[@]}"
        else
          run python tools/train.py "$cfg" "${args[@]}"
        fi
      done
    done
  done
done
