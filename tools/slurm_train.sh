#!/usr/bin/env bash
# Train on a Slurm cluster (srun; one task per GPU), from any directory:
#   tools/slurm_train.sh PARTITION JOB_NAME CONFIG [train.py args...]
#   e.g. GPUS=16 tools/slurm_train.sh gpu cvpt configs/cvpt_vitb_ade20k.py --work-dir work_dirs/x --amp
# Environment: GPUS (total tasks, default 8), GPUS_PER_NODE (8), CPUS_PER_TASK (5),
# SRUN_ARGS (extra srun options), PYTHON (interpreter, default `python` on PATH).
# The total batch stays the config's total_batch_size on any GPU count.
if [ $# -lt 3 ]; then
  echo "usage: $0 PARTITION JOB_NAME CONFIG [train.py args...] (see the header of $0)" >&2
  exit 2
fi
exec bash "$(dirname "$0")/misc/srun_tool.sh" train.py 1 "$@"
