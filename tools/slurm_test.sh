#!/usr/bin/env bash
# Test on a Slurm cluster (srun; one task per GPU), from any directory:
#   tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args...]
#   e.g. tools/slurm_test.sh gpu cvpt configs/cvpt_vitb_ade20k.py work_dirs/x/iter_160000.pth --tta
# Environment: GPUS (total tasks, default 4), GPUS_PER_NODE (4), CPUS_PER_TASK (5),
# SRUN_ARGS (extra srun options), PYTHON (interpreter, default `python` on PATH).
set -euo pipefail
if [ $# -lt 4 ]; then
  echo "usage: $0 PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args...] (see the header of $0)" >&2
  exit 2
fi
TOOLS=$(cd "$(dirname "$0")" && pwd)
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
CHECKPOINT=$4
GPUS=${GPUS:-4}
GPUS_PER_NODE=${GPUS_PER_NODE:-4}
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
    "${PYTHON:-python}" -u "$TOOLS/test.py" "${CONFIG}" "${CHECKPOINT}" --launcher="slurm" "${@:5}"
