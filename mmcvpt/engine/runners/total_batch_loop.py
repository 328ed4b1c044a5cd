"""Train loops that split ``total_batch_size`` over the processes.

mmengine's ``train_dataloader.batch_size`` is per process: a protocol
written for 8 GPUs trains with another total on 1 or 4. mmcvpt's configs
state the total instead::

    total_batch_size = 16  # images per optimizer step, all processes
    train_dataloader = dict(batch_size='auto')
    train_cfg = dict(type='TotalBatchIterBasedTrainLoop', ...)

mmengine's ``Runner.train()`` builds the train loop, and the loop builds
the dataloader, before anything else of the training (hooks, optimizer,
lr scaling). These loops set ``batch_size = total_batch_size / (processes x
optim_wrapper.accumulative_counts)`` there, so any runner (mmcvpt's,
mmseg's or mmpretrain's tools/train.py, ``mim train``, a plain
``Runner.from_cfg(cfg).train()``) trains with the same total. Rules:

- An integer ``batch_size`` is the user's per-process choice (e.g.
  ``--cfg-options train_dataloader.batch_size=2``, even when it equals a
  config's number): kept, and the total it gives is logged as a warning.
- ``total_batch_size=None``: plain mmengine; ``batch_size`` must be an int.
- ``auto_scale_lr``: the lr is scaled by ``total / base_batch_size`` once,
  on any process count and accumulation (mmengine's own rule counts
  ``batch_size x processes`` only); without ``base_batch_size``, by 1.
- A dataloader built elsewhere (another loop type, a script's own
  ``Runner.build_dataloader``) meets ``batch_size='auto'``, and torch stops
  with "batch_size should be a positive integer value, but got
  batch_size=auto": call :func:`resolve_batch_size` first.
"""
import logging
from typing import NamedTuple, Optional

from mmengine.registry import LOOPS
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop

AUTO = 'auto'


class BatchSplit(NamedTuple):
    """What a run trains with.

    Args:
        batch_size (int): Per process.
        total (int, optional): Images per optimizer step over all processes;
            None without ``total_batch_size`` (plain mmengine).
        message (str): The decision in one line ('' for plain mmengine).
        explicit (bool): An integer ``batch_size`` overrode the split.
    """
    batch_size: int
    total: Optional[int]
    message: str
    explicit: bool


def _processes(n: int) -> str:
    return f'{n} process' if n == 1 else f'{n} processes'


def _divisors(n: int, step: int = 1) -> str:
    return ', '.join(str(d) for d in range(1, n + 1) if n % (d * step) == 0)


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and \
        value > 0


def split_total_batch(total_batch_size: Optional[int],
                      batch_size,
                      world_size: int,
                      accumulative_counts: int = 1) -> BatchSplit:
    """Per-process batch for ``total = batch x processes x accumulation``.

    Args:
        total_batch_size (int, optional): The config's ``total_batch_size``.
        batch_size (int | str): ``train_dataloader.batch_size``: ``'auto'``
            (split the total) or the user's per-process number.
        world_size (int): Number of training processes.
        accumulative_counts (int): ``optim_wrapper.accumulative_counts``.
            Defaults to 1.

    Returns:
        BatchSplit: The per-process batch, the total and the log line.

    Raises:
        ValueError: One line: a bad value, or a total that does not divide
            over ``world_size x accumulative_counts``.
    """
    if batch_size != AUTO and not _positive_int(batch_size):
        raise ValueError(f'train_dataloader.batch_size must be a positive '
                         f"integer or '{AUTO}', got {batch_size!r}")
    if total_batch_size is None:
        if batch_size == AUTO:
            raise ValueError(
                f"train_dataloader.batch_size='{AUTO}' needs total_batch_size"
                ' (images per optimizer step over all processes); set '
                'total_batch_size=N or an integer batch_size per process')
        return BatchSplit(batch_size, None, '', False)
    if not _positive_int(total_batch_size):
        raise ValueError(f'total_batch_size must be a positive integer, '
                         f'got {total_batch_size!r}')
    accum = accumulative_counts
    if not _positive_int(accum):
        raise ValueError(f'optim_wrapper.accumulative_counts must be a '
                         f'positive integer, got {accum!r}')
    total = total_batch_size
    per_step = world_size * accum
    if batch_size == AUTO:
        if total % per_step:
            raise ValueError(
                f'total_batch_size={total} does not divide over '
                f'{_processes(world_size)} x {accum} accumulation '
                f'(optim_wrapper.accumulative_counts); '
                + (f'valid process counts: {_divisors(total, accum)}'
                   if total % accum == 0 else
                   f'valid accumulative_counts: {_divisors(total)}')
                + f'; or set total_batch_size to a multiple of {per_step}'
                f' (and scale the lr to match)')
        batch_size, explicit = total // per_step, False
    else:
        explicit = batch_size * per_step != total
    run_total = batch_size * per_step
    message = (f'total batch {run_total} = {batch_size} per process x '
               f'{_processes(world_size)} x {accum} accumulation')
    if explicit:
        message = (f'batch size set explicitly: {message}, not '
                   f"total_batch_size={total} (leave train_dataloader."
                   f"batch_size='{AUTO}' to keep the total on any process "
                   f'count)')
    return BatchSplit(batch_size, run_total, message, explicit)


def _accumulative_counts(cfg) -> int:
    return (cfg.get('optim_wrapper') or {}).get('accumulative_counts', 1)


def resolve_batch_size(cfg, world_size: int = 1) -> BatchSplit:
    """:func:`split_total_batch` of a whole config, for code that builds
    ``cfg.train_dataloader`` without these loops (then set
    ``cfg.train_dataloader.batch_size`` to the result's ``batch_size``)."""
    return split_total_batch(
        cfg.get('total_batch_size'), cfg.train_dataloader.get('batch_size'),
        world_size, _accumulative_counts(cfg))


def apply_total_batch(runner, dataloader, max_iters: Optional[int] = None):
    """Split the total for ``runner`` before the loop builds
    ``dataloader``; log the decision on rank 0. The config keeps ``'auto'``
    (dumped, it splits again on any process count).

    Args:
        runner (Runner): The runner; its ``cfg`` has ``total_batch_size``
            and ``optim_wrapper``, its ``world_size`` the process count.
        dataloader (dict | DataLoader): The train dataloader.
        max_iters (int, optional): An iteration-based loop's length, to say
            how many optimizer steps it makes under accumulation.

    Returns:
        dict | DataLoader: What the loop builds: a dict gets the
        per-process ``batch_size`` (a copy, also the runner's, which
        mmengine's ``Runner.scale_lr`` reads).
    """
    cfg = runner.cfg
    is_cfg = isinstance(dataloader, dict)
    accum = _accumulative_counts(cfg)
    split = split_total_batch(
        cfg.get('total_batch_size'),
        dataloader.get('batch_size') if is_cfg else dataloader.batch_size,
        runner.world_size, accum)
    if is_cfg:
        dataloader = dict(dataloader, batch_size=split.batch_size)
        runner._train_dataloader = dataloader
    if split.total is None:
        return dataloader
    lines = [(logging.WARNING if split.explicit else logging.INFO,
              split.message)]
    if max_iters is not None and accum > 1:
        lines[0] = (lines[0][0], f'{split.message}; max_iters={max_iters} '
                    f'counts batches: {max_iters // accum} optimizer steps')
    scale = runner.auto_scale_lr
    if scale and scale.get('enable', False):
        base = scale.get('base_batch_size') or split.total
        # mmengine's Runner.scale_lr multiplies the lr by batch_size x
        # processes / base_batch_size: divide the base by the accumulation
        runner.auto_scale_lr = dict(
            scale, base_batch_size=base / accum if accum > 1 else base)
        lines.append((logging.INFO,
                      f'auto_scale_lr: lr x {split.total / base:g} (total '
                      f'batch {split.total} / base_batch_size {base})'))
    if runner.rank == 0:
        for level, line in lines:
            runner.logger.log(level, line)
    return dataloader


@LOOPS.register_module()
class TotalBatchIterBasedTrainLoop(IterBasedTrainLoop):
    """mmengine's ``IterBasedTrainLoop`` with ``total_batch_size`` split over
    the processes (module docstring); same arguments."""

    def __init__(self, runner, dataloader, max_iters: int, *args,
                 **kwargs) -> None:
        dataloader = apply_total_batch(runner, dataloader, max_iters)
        super().__init__(runner, dataloader, max_iters, *args, **kwargs)


@LOOPS.register_module()
class TotalBatchEpochBasedTrainLoop(EpochBasedTrainLoop):
    """mmengine's ``EpochBasedTrainLoop`` with ``total_batch_size`` split
    over the processes (module docstring); same arguments."""

    def __init__(self, runner, dataloader, *args, **kwargs) -> None:
        dataloader = apply_total_batch(runner, dataloader)
        super().__init__(runner, dataloader, *args, **kwargs)
