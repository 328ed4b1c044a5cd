#!/usr/bin/env bash
# tools/misc/torchrun_tool.sh TOOL GPUS [TOOL args...]: the python script TOOL (path as given)
# in GPUS processes of this node (torch.distributed.run, --launcher pytorch); the body of
# tools/dist_train.sh and tools/dist_test.sh (their headers list the environment).
TOOL=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}

PYTHONPATH="$(dirname "$0")/../..":$PYTHONPATH \
"${PYTHON:-python}" -m torch.distributed.run \
    --nnodes=$NNODES \
    --node_rank=$NODE_RANK \
    --master_addr=$MASTER_ADDR \
    --nproc_per_node=$GPUS \
    --master_port=$PORT \
    "$TOOL" \
    "${@:3}" \
    --launcher pytorch
