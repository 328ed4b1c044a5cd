#!/usr/bin/env bash
# Train on a Slurm cluster (srun; one task per GPU), from any directory:
#   tools/slurm_train.sh PARTITION JOB_NAME CONFIG [train.py args...]
#   e.g. GPUS=16 tools/slurm_train.sh gpu cvpt configs/cvpt_vitb_ade20k.py --work-dir work_dirs/x --amp
# Environment: GPUS (total tasks, default 8), GPUS_PER_NODE (8), CPUS_PER_TASK (5),
# SRUN_ARGS (extra srun options), PYTHON (interpreter, default `python` on PATH).
# The total batch stays the config's total_batch_size on any GPU count.
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 PARTITION JOB_NAME CONFIG [train.py args...] (see the header of $0)" >&2
  exit 2
fi
TOOLS=$(cd "$(dirname "$0")" && pwd)
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}

set -x
PYTHONPATH="$TOOLS/..":${PYTHONPATH:-} \
srun -p "${PARTITION}" \
    --job-name="${JOB_NAME}" \
    --gres=gpu:${GPUS_PER_NODE} \
    --ntasks=${GPUS} \
    --ntasks-per-node=${GPUS_PER_NODE} \
    --cpus-per-task=${CPUS_PER_TASK} \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS} \
    "${PYTHON:-python}" -u "$TOOLS/train.py" "${CONFIG}" --launcher="slurm" "${@:4}"
