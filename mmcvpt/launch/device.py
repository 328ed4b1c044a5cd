"""Fit a config written for a GPU cluster to the machine it runs on."""
import torch
from mmengine.config import Config
from mmengine.logging import print_log

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


def log_device_changes(changes: list) -> None:
    for change in changes:
        print_log(f'no CUDA on this machine: {change}', logger='current')
