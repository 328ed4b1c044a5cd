"""The process group of tools/train.py and tools/test.py."""
import gc
import os
import signal
import threading

import torch
import torch.distributed as dist
from mmengine.config import Config

def init_cpu_distributed(launcher: str) -> bool:
    """Start the gloo process group for ``--launcher pytorch`` without CUDA.

    mmengine's own start-up calls ``torch.cuda.set_device`` unconditionally;
    it skips its start-up when a process group already exists.

    Returns:
        bool: Whether a process group was started here.
    """
    if launcher != 'pytorch' or torch.cuda.is_available() or \
            dist.is_initialized():
        return False
    dist.init_process_group(
        backend='gloo',
        rank=int(os.environ['RANK']),
        world_size=int(os.environ['WORLD_SIZE']))
    return True


def init_distributed(cfg: Config) -> bool:
    """Start the process group of ``cfg.launcher``, before anything else.

    Without CUDA: gloo (:func:`init_cpu_distributed`). With CUDA: mmengine's
    ``init_dist`` with ``cfg.env_cfg.dist_cfg`` (nccl), as the Runner would;
    the Runner skips its own start-up when a process group exists.

    Returns:
        bool: Whether a process group was started here.
    """
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or dist.is_initialized():
        return False
    if not torch.cuda.is_available():
        return init_cpu_distributed(launcher)
    from mmengine.dist import init_dist
    init_dist(launcher, **cfg.get('env_cfg', {}).get('dist_cfg', {}))
    return True


def end_distributed(barrier: bool = True) -> None:
    """Destroy the process group, if any, in order.

    Args:
        barrier (bool): Wait for every rank first, so none tears down while
            another still talks to it. Not after an error: the other ranks
            may never reach the barrier. Defaults to True.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    try:
        if barrier:
            dist.barrier()
    finally:
        # A second Ctrl-C (torchrun forwards one) must not cut this short.
        main = threading.current_thread() is threading.main_thread()
        sigint = signal.signal(signal.SIGINT, signal.SIG_IGN) if main \
            else None
        try:
            # The Runner's reference cycles keep DDP's reducer, and through
            # it the gloo/nccl backend, alive: free them now, so that the
            # backend's C++ worker threads are joined here and not torn down
            # during interpreter exit ("terminate called without an active
            # exception").
            gc.collect()
            dist.destroy_process_group()
            gc.collect()
        finally:
            if main:
                signal.signal(signal.SIGINT, sigint)
