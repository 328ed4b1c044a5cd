"""The total batch of a config, the same for any number of processes.

mmengine's ``train_dataloader.batch_size`` is per process: a protocol written
for one GPU silently gets an 8x larger batch (and 8x fewer steps) on 8 GPUs.
mmcvpt's configs therefore state the batch that the learning rate was tuned
for as a top-level key::

    total_batch_size = 16  # images per optimizer step, all processes
    train_dataloader = dict(batch_size=2)  # per process, for 8 GPUs

and tools/train.py splits it: ``batch_size = total_batch_size // world
size``. Rules:

- ``total_batch_size`` missing or ``None``: plain mmengine, nothing changes.
- The ``batch_size`` written in a config is what a plain single-process
  ``Runner.from_cfg`` uses; it is consistent with the total for the GPU count
  the config's comment documents.
- A ``train_dataloader.batch_size`` that differs from the config file's (an
  explicit ``--cfg-options``) is the user's per-process choice and is kept:
  the total becomes ``batch_size x world size``, with a warning. Setting both
  so that they disagree is an error.
- ``auto_scale_lr`` (off in every mmcvpt config): mmengine scales the lr by
  ``world size x batch_size / base_batch_size``, which is ``total_batch_size
  / base_batch_size``, once, whatever the process count. Without a
  ``base_batch_size`` the config file's ``total_batch_size`` is used.
"""
import logging
import os
import sys

from mmengine.config import Config
from mmengine.dist import get_rank, get_world_size, is_distributed
from mmengine.logging import print_log

# launcher -> (world size, rank) environment variables that mmengine's
# init_dist reads when it starts the process group
LAUNCHER_ENV = {
    'pytorch': ('WORLD_SIZE', 'RANK'),
    'slurm': ('SLURM_NTASKS', 'SLURM_PROCID'),
    'mpi': ('OMPI_COMM_WORLD_SIZE', 'OMPI_COMM_WORLD_RANK'),
}
EXPLICIT = 'batch size set explicitly'  # lines logged as warnings


def _processes(n: int) -> str:
    return f'{n} process' if n == 1 else f'{n} processes'


def _divisors(n: int) -> str:
    return ', '.join(str(d) for d in range(1, n + 1) if n % d == 0)


def _file_values(cfg: Config) -> tuple:
    """(total_batch_size, train batch_size) as the config file writes them,
    i.e. without ``--cfg-options``; ``(None, None)`` for a config that was
    not read from a file."""
    filename = getattr(cfg, 'filename', None)
    if not filename or not os.path.isfile(filename):
        return None, None
    original = Config.fromfile(filename, import_custom_modules=False)
    return (original.get('total_batch_size'),
            original.get('train_dataloader', {}).get('batch_size'))


def apply_total_batch_size(cfg: Config, world_size: int) -> list:
    """Set ``train_dataloader.batch_size`` to ``total_batch_size // world
    size`` (rules in the module docstring).

    Args:
        cfg (Config): A training config; changed in place. Afterwards
            ``cfg.total_batch_size`` is the total batch the run uses.
        world_size (int): Number of training processes.

    Returns:
        list[str]: What was decided, one line each (empty without
        ``total_batch_size``).

    Raises:
        ValueError: The total does not divide over ``world_size``, or an
            explicit ``batch_size`` contradicts ``total_batch_size``.
    """
    total = cfg.get('total_batch_size')
    if total is None:
        return []
    if not isinstance(total, int) or total < 1:
        raise ValueError(f'total_batch_size must be a positive integer, '
                         f'got {total!r}')
    loader = cfg.train_dataloader
    batch = loader.get('batch_size')
    file_total, file_batch = _file_values(cfg)
    lines = []
    if file_batch is not None and batch != file_batch and \
            batch * world_size != total:
        if total != file_total:
            raise ValueError(
                f'train_dataloader.batch_size={batch} x '
                f'{_processes(world_size)} contradicts total_batch_size='
                f'{total}; set only '
                f'total_batch_size (it is split over the processes)')
        # the user's explicit per-process batch: kept, and said so
        total = batch * world_size
        lines.append(
            f'{EXPLICIT}: train_dataloader.batch_size={batch} per process x '
            f'{_processes(world_size)} = total batch {total}, not the '
            f"config's total_batch_size={file_total} (set total_batch_size "
            f'instead to keep the total on any process count)')
    elif total % world_size:
        raise ValueError(
            f'total_batch_size={total} does not divide over '
            f'{_processes(world_size)}; use a process count that divides it '
            f'({_divisors(total)}) or pass --cfg-options '
            f'total_batch_size=<a multiple of {world_size}> (and scale the '
            f'lr to match)')
    else:
        loader.batch_size = total // world_size
        change = '' if batch == loader.batch_size else \
            f' (train_dataloader.batch_size {batch} -> {loader.batch_size})'
        lines.append(f'total batch {total} = {loader.batch_size} per '
                     f'process x {_processes(world_size)}{change}')
    cfg.total_batch_size = total
    scale = cfg.get('auto_scale_lr')
    if scale and scale.get('enable', False):
        if scale.get('base_batch_size') is None:
            scale.base_batch_size = file_total or total
        lines.append(f'auto_scale_lr: lr x {total / scale.base_batch_size:g}'
                     f' (total batch {total} / base_batch_size '
                     f'{scale.base_batch_size}), for any process count')
    return lines


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


def resolve_total_batch_size(cfg: Config, loaders: tuple) -> None:
    """:func:`apply_total_batch_size` for tools/train.py.

    Logs the outcome on rank 0; a total that does not divide exits with one
    line (``error: ...``, from rank 0; the other ranks exit with code 1).

    Args:
        cfg (Config): The tool's config (``launcher`` set).
        loaders (tuple[str]): The tool's dataloader keys; nothing happens
            without ``'train_dataloader'`` (tools/test.py).
    """
    if 'train_dataloader' not in loaders:
        return
    world_size, rank = launcher_world(cfg.get('launcher', 'none'))
    try:
        lines = apply_total_batch_size(cfg, world_size)
    except ValueError as e:
        sys.exit(f'error: {e}' if rank == 0 else 1)
    if rank == 0:
        for line in lines:
            level = logging.WARNING if line.startswith(EXPLICIT) else \
                logging.INFO
            print_log(line, logger='current', level=level)
