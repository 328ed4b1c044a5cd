"""What tools/train.py and tools/test.py do to a config before running it.

One place for both tools, for mmseg and mmpretrain configs alike.
"""
import os
import os.path as osp
import sys

import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from .batch import resolve_total_batch_size
from .preflight import PreflightError, preflight

SYNC_BN_TYPES = ('SyncBN', 'MMSyncBN', 'SyncBatchNorm')


def _replace_sync_bn(node) -> int:
    """SyncBN -> BN in every nested norm config; returns the count."""
    count = 0
    if isinstance(node, dict):
        if node.get('type') in SYNC_BN_TYPES:
            node['type'] = 'BN'
            count += 1
        for value in node.values():
            count += _replace_sync_bn(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            count += _replace_sync_bn(value)
    return count


def enable_amp(cfg: Config) -> None:
    """``--amp``: mmengine's mixed precision wrapper (mmseg's train.py)."""
    wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if wrapper not in ('AmpOptimWrapper', 'CPUAmpOptimWrapper'):
        if wrapper != 'OptimWrapper':
            raise ValueError(f'--amp needs optim_wrapper.type OptimWrapper or '
                             f'AmpOptimWrapper, the config has {wrapper!r}')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')


def adapt_cfg_to_device(cfg: Config, amp_requested: bool = False) -> list:
    """Make a config written for a GPU cluster run on this machine.

    With CUDA nothing changes. Without it: the nccl backend becomes gloo,
    SyncBN becomes BN, DDP wraps CPU modules (``device_ids=None``), and
    mixed precision becomes bf16 autocast if ``--amp`` was asked for, else
    fp32 (the configs default to AMP for GPUs).

    Returns:
        list[str]: What was changed, one line each (empty with CUDA).
    """
    if torch.cuda.is_available():
        return []
    changes = []
    dist_cfg = cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    if dist_cfg.get('backend', 'nccl') == 'nccl':
        dist_cfg['backend'] = 'gloo'
        changes.append('distributed backend nccl -> gloo')
    count = _replace_sync_bn(cfg.get('model', {}))
    if cfg.pop('sync_bn', None) is not None:
        count += 1
    if count:
        changes.append(f'SyncBN -> BN ({count} norm configs)')
    wrapper_cfg = cfg.get('model_wrapper_cfg') or {}
    if wrapper_cfg.get('type', 'MMDistributedDataParallel') == \
            'MMDistributedDataParallel':
        wrapper_cfg['type'] = 'CPUDistributedDataParallel'
        wrapper_cfg.setdefault('broadcast_buffers', False)
        wrapper_cfg.setdefault('find_unused_parameters',
                               cfg.get('find_unused_parameters', False))
        cfg.model_wrapper_cfg = wrapper_cfg
        changes.append('DDP -> CPUDistributedDataParallel (device_ids=None)')
    optim = cfg.get('optim_wrapper')
    if optim is not None and optim.get('type') == 'AmpOptimWrapper':
        if amp_requested:
            optim['type'] = 'CPUAmpOptimWrapper'
            changes.append('AMP -> bf16 autocast (CPU autocast is bf16 only)')
        else:
            optim['type'] = 'OptimWrapper'
            optim.pop('loss_scale', None)
            optim.pop('dtype', None)
            changes.append('AMP -> fp32 (no CUDA; pass --amp for bf16)')
    return changes


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


def log_device_changes(changes: list) -> None:
    for change in changes:
        print_log(f'no CUDA on this machine: {change}', logger='current')


def enable_visualization(cfg: Config,
                         show: bool = False,
                         show_dir: str = None,
                         wait_time: float = 2) -> None:
    """``--show`` / ``--show-dir`` for mmseg and mmpretrain test runs."""
    if cfg.get('default_scope') == 'mmpretrain':
        cfg.default_hooks.visualization = dict(
            type='VisualizationHook',
            enable=True,
            show=show,
            wait_time=wait_time,
            out_dir=show_dir)
        return
    hook = cfg.get('default_hooks', {}).get('visualization')
    if hook is None:
        raise ValueError(
            f'--show/--show-dir need default_hooks.visualization in '
            f'{cfg.filename}; add dict(type=\'SegVisualizationHook\')')
    hook['draw'] = True
    hook['interval'] = 1  # mmseg's default draws every 50th image only
    if show:
        hook.update(show=True, wait_time=wait_time)
    if show_dir:
        cfg.visualizer['save_dir'] = show_dir


def load_cli_config(config: str, launcher: str = 'none',
                    cfg_options: dict = None,
                    work_dir: str = None) -> Config:
    """The config as mmseg's tools assemble it from their command line.

    ``--cfg-options`` are merged, ``--work-dir`` wins over the config's
    ``work_dir``, which defaults to ``./work_dirs/<config name>``.
    """
    cfg = Config.fromfile(config)
    cfg.launcher = launcher
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config))[0])
    return cfg


def build_runner(cfg: Config, loaders: tuple, amp_requested: bool = False):
    """Check the inputs, fit the config to this machine, build the runner.

    A :class:`PreflightError` on any of ``loaders`` exits with its one-line
    message before anything is built or written.
    """
    try:
        preflight(cfg, loaders)
    except PreflightError as e:
        sys.exit(f'error: {e}')
    changes = adapt_cfg_to_device(cfg, amp_requested=amp_requested)
    init_cpu_distributed(cfg.launcher)
    resolve_total_batch_size(cfg, loaders)
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else \
        Runner.from_cfg(cfg)
    log_device_changes(changes)
    return runner
