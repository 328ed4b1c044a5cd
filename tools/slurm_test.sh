#!/usr/bin/env bash
# Test on a Slurm cluster (srun; one task per GPU), from any directory:
#   tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args...]
#   e.g. tools/slurm_test.sh gpu cvpt configs/cvpt_vitb_ade20k.py work_dirs/x/iter_160000.pth --tta
# Environment: GPUS (total tasks, default 4), GPUS_PER_NODE (4), CPUS_PER_TASK (5),
# SRUN_ARGS (extra srun options), PYTHON (interpreter, default `python` on PATH).
if [ $# -lt 4 ]; then
  echo "usage: $0 PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args...] (see the header of $0)" >&2
  exit 2
fi
GPUS=${GPUS:-4} GPUS_PER_NODE=${GPUS_PER_NODE:-4} \
    exec bash "$(dirname "$0")/misc/srun_tool.sh" test.py 2 "$@"
