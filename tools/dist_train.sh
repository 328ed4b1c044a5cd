#!/usr/bin/env bash
# tools/dist_train.sh CONFIG GPUS [train.py args]; on a machine without CUDA, GPUS CPU processes (gloo).
# Environment: NNODES (1), NODE_RANK (0), PORT (29500), MASTER_ADDR (127.0.0.1), and
# PYTHON=/path/to/python for the interpreter (default: `python` on PATH, e.g. after
# `source .venv/bin/activate`).
exec bash "$(dirname "$0")/misc/torchrun_tool.sh" "$(dirname "$0")/train.py" "$2" "$1" "${@:3}"
