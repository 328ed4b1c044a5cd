"""tools/train.py's early check of ``total_batch_size``.

The split itself is the config's: its train loop
(``mmcvpt.engine.runners.TotalBatchIterBasedTrainLoop`` and the epoch-based
one) sets the per-process batch under any runner. The tool only checks,
before the Runner writes anything, that the total divides over this run's
processes x accumulation, and stops with one line if it does not.
"""
import os
import sys

from mmengine.config import Config
from mmengine.dist import get_rank, get_world_size, is_distributed
from mmengine.registry import LOOPS

from mmcvpt.engine.runners import (TotalBatchEpochBasedTrainLoop,
                                   TotalBatchIterBasedTrainLoop,
                                   resolve_batch_size)

# launcher -> (world size, rank) environment variables that mmengine's
# init_dist reads when it starts the process group
LAUNCHER_ENV = {
    'pytorch': ('WORLD_SIZE', 'RANK'),
    'slurm': ('SLURM_NTASKS', 'SLURM_PROCID'),
    'mpi': ('OMPI_COMM_WORLD_SIZE', 'OMPI_COMM_WORLD_RANK'),
}


def launcher_world(launcher: str) -> tuple:
    """(world size, rank) of this run: from the process group, or, before
    one exists, from the environment that mmengine's ``init_dist`` reads for
    ``launcher`` (never a silent 1 for a distributed run)."""
    if is_distributed():
        return get_world_size(), get_rank()
    if launcher in LAUNCHER_ENV:
        size, rank = LAUNCHER_ENV[launcher]
        return int(os.environ[size]), int(os.environ[rank])
    return 1, 0


SPLITTING_LOOPS = (TotalBatchIterBasedTrainLoop, TotalBatchEpochBasedTrainLoop)


def _splitting_loop(cfg: Config) -> bool:
    """Whether ``cfg.train_cfg`` builds one of the loops that split."""
    loop = (cfg.get('train_cfg') or {}).get('type')
    if isinstance(loop, str):
        with LOOPS.switch_scope_and_registry(cfg.get('default_scope')) as reg:
            loop = reg.get(loop)
    return isinstance(loop, type) and issubclass(loop, SPLITTING_LOOPS)


def _check(cfg: Config, world_size: int) -> None:
    split = resolve_batch_size(cfg, world_size)  # ValueError: one line
    if cfg.train_dataloader.get('batch_size') == 'auto' and \
            not _splitting_loop(cfg):
        loop = (cfg.get('train_cfg') or {}).get('type')
        raise ValueError(
            "train_dataloader.batch_size='auto' is split by train_cfg.type="
            "'TotalBatchIterBasedTrainLoop' or 'TotalBatchEpochBasedTrainLoop'"
            f", not {'by_epoch' if loop is None else repr(loop)}; use one of "
            f'them or set train_dataloader.batch_size={split.batch_size} (per '
            'process)')


def check_total_batch_size(cfg: Config, loaders: tuple) -> None:
    """Exit with one line (``error: ...``, from rank 0; the other ranks
    exit with code 1) if ``cfg``'s batch cannot be split for this run or
    its train loop does not split it. ``cfg`` is not changed: the train
    loop splits it.

    Args:
        cfg (Config): The tool's config (``launcher`` set).
        loaders (tuple[str]): The tool's dataloader keys; nothing happens
            without ``'train_dataloader'`` (tools/test.py).
    """
    if 'train_dataloader' not in loaders or not cfg.get('train_dataloader'):
        return
    world_size, rank = launcher_world(cfg.get('launcher', 'none'))
    try:
        _check(cfg, world_size)
    except ValueError as e:
        sys.exit(f'error: {e}' if rank == 0 else 1)
