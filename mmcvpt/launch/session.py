"""The run of a tool inside its process group, and its one-line exits."""
import contextlib
import os.path as osp
import signal
import traceback

import torch.distributed as dist
from mmengine.config import Config
from mmengine.runner import find_latest_checkpoint

from ..peft.pretrained_file import CheckpointError
from .distributed import end_distributed, init_distributed
from .errors import build_error, failed_image, peer_lost
from .preemption import Preempted, requeue_slurm_job, shield_workers


def _release_frames(exc: BaseException) -> None:
    """Drop the locals (a Runner, its model) an exception's frames hold."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        traceback.clear_frames(exc.__traceback__)
        exc = exc.__cause__ or exc.__context__


@contextlib.contextmanager
def distributed_session(cfg: Config, resume_hint: bool = False):
    """Run a tool's job inside its process group, which ends on every path.

    The group starts first (pre-flight runs once, on rank 0, inside it) and
    is destroyed after a barrier on success, without one after an error or
    Ctrl-C. A config that mmengine cannot build (a bad argument value, an
    unknown type) stops with one line naming the class and the value; an
    image that cannot be loaded with one line naming the file (and, with
    ``resume_hint``, the checkpoint in ``cfg.work_dir`` to resume from);
    both exit with code 1, and the ranks that lose their connection to it
    then stop with one line each too. A run that PreemptionHook stopped
    (:class:`~mmcvpt.launch.preemption.Preempted`) ends the group after a
    barrier and exits with ``128 + signal``, on SIGUSR1 in a Slurm job after
    rank 0 has requeued it (see :mod:`mmcvpt.launch.preemption`).

    Args:
        cfg (Config): The tool's config (``launcher``, ``work_dir``).
        resume_hint (bool): Name the checkpoint to resume from in the
            image error (training). Defaults to False.
    """
    init_distributed(cfg)
    handlers = shield_workers()
    try:
        yield
        if dist.is_initialized():
            dist.barrier()  # here, so that a dead partner is one line too
    except Preempted as e:  # every rank: the hook's all-reduce agreed
        _release_frames(e)
        if not dist.is_initialized() or dist.get_rank() == 0:
            # Before the barrier: srun --kill-on-bad-exit ends rank 0 as
            # soon as another rank exits with the non-zero code.
            requeue_slurm_job(e.signum)
        end_distributed(barrier=True)
        raise SystemExit(e.exit_code) from None
    except CheckpointError as e:  # a checkpoint that does not fit the model
        _release_frames(e)
        raise SystemExit(f'error: {e}') from None
    except Exception as e:
        bad, lost = failed_image(e), peer_lost(e)
        build = build_error(e) if bad is None else None
        _release_frames(e)
        if build is not None:
            raise SystemExit(f'error: {build}') from None
        if lost is not None and bad is None:
            raise SystemExit(lost) from None
        if bad is None:
            raise
        message = f'error: cannot load {bad[0]} ({bad[1]}); replace or ' \
            'remove it (--check-images finds every such file)'
        if resume_hint:
            ckpt = find_latest_checkpoint(cfg.work_dir) if osp.isfile(
                osp.join(cfg.work_dir, 'last_checkpoint')) else None
            message += f', then resume from {ckpt} with --resume' if ckpt \
                else '; no checkpoint to resume from yet'
        raise SystemExit(message) from None
    except BaseException as e:  # Ctrl-C, sys.exit
        _release_frames(e)
        raise
    finally:
        end_distributed(barrier=False)
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
