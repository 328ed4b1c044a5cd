#!/usr/bin/env bash
# Train on a Slurm cluster (srun; one task per GPU), from any directory:
#   tools/slurm_train.sh PARTITION JOB_NAME CONFIG [train.py args...]
#   e.g. GPUS=16 tools/slurm_train.sh gpu cvpt configs/cvpt_vitb_ade20k.py --work-dir work_dirs/x --amp
# Environment: GPUS (total tasks, default 8), GPUS_PER_NODE (8), CPUS_PER_TASK (5),
# SRUN_ARGS (extra srun options), PYTHON (interpreter, default `python` on PATH).
# The total batch stays the config's total_batch_size on any GPU count.
# Preemption: on SIGTERM (slurm preempts with it) or SIGUSR1 every task finishes its
# iteration, rank 0 checkpoints, and train.py exits with 128 + signal; the same command
# again resumes from that checkpoint by itself. Run this script from `sbatch --requeue` so
# that slurm requeues a preempted job, and with `sbatch --signal=USR1@90` (or
# SRUN_ARGS="--signal=USR1@90") for SIGUSR1 90 s before the time limit, on which rank 0
# also runs `scontrol requeue $SLURM_JOB_ID` before exiting (no requeue on scancel).
if [ $# -lt 3 ]; then
  echo "usage: $0 PARTITION JOB_NAME CONFIG [train.py args...] (see the header of $0;" \
       "preemption: sbatch --requeue --signal=USR1@90)" >&2
  exit 2
fi
exec bash "$(dirname "$0")/misc/srun_tool.sh" train.py 1 "$@"
