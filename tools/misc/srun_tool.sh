#!/usr/bin/env bash
# tools/misc/srun_tool.sh TOOL NPOS PARTITION JOB_NAME POSITIONAL(NPOS)... [TOOL args...]
# One srun task per GPU of tools/TOOL with --launcher=slurm; the body of tools/slurm_train.sh
# and tools/slurm_test.sh (their headers list the environment).
# Slurm signals the tasks themselves (train.py: SIGTERM/SIGUSR1 checkpoint and stop);
# SRUN_ARGS may carry --signal=USR1@SECONDS; sbatch --requeue (see tools/slurm_train.sh).
set -euo pipefail
TOOLS=$(cd "$(dirname "$0")/.." && pwd)
TOOL=$1
NPOS=$2
PARTITION=$3
JOB_NAME=$4
shift 4
POSITIONAL=("${@:1:$NPOS}")
shift "$NPOS"
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
    "${PYTHON:-python}" -u "$TOOLS/$TOOL" "${POSITIONAL[@]}" --launcher="slurm" "$@"
