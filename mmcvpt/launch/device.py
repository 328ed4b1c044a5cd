"""Fit a config written for a GPU cluster to the machine it runs on.

``--device auto`` (the tools' default) runs on CUDA when it is usable and
falls back to the CPU only on a machine with no sign of an NVIDIA GPU: a GPU
node whose driver or ``CUDA_VISIBLE_DEVICES`` is broken stops with one line
instead of starting a long job on the CPU. ``--device cpu`` runs on the CPU
on purpose, ``--device cuda`` insists on CUDA. Each probe is a small function
(tests fake them).
"""
import copy
import glob
import os
import os.path as osp
import shutil
import sys

import torch
from mmengine.config import Config
from mmengine.logging import print_log

SYNC_BN_TYPES = ('SyncBN', 'MMSyncBN', 'SyncBatchNorm')
DEVICES = ('auto', 'cuda', 'cpu')
NVIDIA_DRIVER_VERSION = '/proc/driver/nvidia/version'
# CUDA_VISIBLE_DEVICES that hides every GPU, mmengine's documented way to
# train on the CPU; an empty value may be an unset shell variable instead.
HIDDEN = '-1'


def cuda_usable() -> bool:
    """Probe: torch can use CUDA here."""
    return torch.cuda.is_available()


def nvidia_driver_files() -> list:
    """Probe: the NVIDIA kernel driver's files (loaded driver, GPU nodes)."""
    found = [NVIDIA_DRIVER_VERSION] if osp.exists(NVIDIA_DRIVER_VERSION) \
        else []
    return found + sorted(glob.glob('/dev/nvidia[0-9]*'))


def nvidia_smi() -> str:
    """Probe: the path of ``nvidia-smi`` on PATH, or None."""
    return shutil.which('nvidia-smi')


def cuda_visible_devices() -> str:
    """Probe: ``CUDA_VISIBLE_DEVICES`` (None where it is not set)."""
    return os.environ.get('CUDA_VISIBLE_DEVICES')


def nvidia_gpu_evidence() -> list:
    """What says this machine has an NVIDIA GPU, one string each.

    ``CUDA_VISIBLE_DEVICES`` counts on its own when it names devices (a
    scheduler set it for a GPU job); an empty or ``-1`` value is only named
    beside other evidence.
    """
    files = nvidia_driver_files()
    found = files[:3] + ([f'+{len(files) - 3} more'] if files[3:] else [])
    smi = nvidia_smi()
    if smi:
        found.append(smi)
    visible = cuda_visible_devices()
    if visible is not None and (found or
                                visible.strip() not in ('', HIDDEN)):
        found.append(f'CUDA_VISIBLE_DEVICES={visible!r}')
    return found


def _why_no_cuda() -> str:
    if torch.version.cuda is None:
        return f'torch {torch.__version__} is built without CUDA'
    return 'torch.cuda.is_available() is False'


def _local_rank(launcher: str) -> int:
    """This process's rank on its node, before any process group."""
    key = dict(slurm='SLURM_LOCALID', mpi='OMPI_COMM_WORLD_LOCAL_RANK').get(
        launcher, 'LOCAL_RANK')
    return int(os.environ.get(key) or 0)


def _hide_cuda() -> None:
    """``--device cpu``: CUDA_VISIBLE_DEVICES=-1 for this process and its
    children (dataloader workers, tools it starts).

    Hiding must come before the first CUDA query, and ``import mmcvpt``
    already made one: mmengine fixes ``get_device()`` when
    ``mmengine.device`` is imported and torch caches the device count. So
    where CUDA is already visible the tool starts again, in place
    (``os.execve``, same pid, same arguments), with the GPUs hidden.
    """
    hidden_before = cuda_visible_devices() == HIDDEN
    os.environ['CUDA_VISIBLE_DEVICES'] = HIDDEN
    if not cuda_usable():
        return
    if hidden_before:
        raise SystemExit(f'error: --device cpu: CUDA stays visible with '
                         f'CUDA_VISIBLE_DEVICES={HIDDEN}; cannot hide it '
                         'from this process')
    argv = getattr(sys, 'orig_argv', None) or [sys.executable] + sys.argv
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable] + argv[1:], dict(os.environ))


def resolve_device(requested: str = 'auto') -> tuple:
    """The device of ``--device``, or one ``error: ...`` line.

    Args:
        requested (str): 'auto', 'cuda' or 'cpu'. Defaults to 'auto'.

    Returns:
        tuple[str, str]: ('cuda' or 'cpu', why; empty on CUDA).
    """
    if requested not in DEVICES:
        raise SystemExit(f'error: --device {requested!r}: expected one of '
                         f'{", ".join(DEVICES)}')
    if requested == 'cpu':
        _hide_cuda()
        return 'cpu', '--device cpu'
    if cuda_usable():
        return 'cuda', ''
    if requested == 'auto' and cuda_visible_devices() == HIDDEN:
        return 'cpu', f'CUDA_VISIBLE_DEVICES={HIDDEN} hides the GPUs'
    evidence = nvidia_gpu_evidence()
    if requested == 'cuda':
        seen = f'this machine has signs of an NVIDIA GPU ' \
            f'({", ".join(evidence)})' if evidence else 'no sign of an ' \
            f'NVIDIA GPU here ({NVIDIA_DRIVER_VERSION}, /dev/nvidia*, ' \
            'nvidia-smi, CUDA_VISIBLE_DEVICES)'
        raise SystemExit(f'error: --device cuda, but CUDA is not usable '
                         f'({_why_no_cuda()}) and {seen}; fix the driver or '
                         'CUDA_VISIBLE_DEVICES, or pass --device cpu')
    if evidence:
        raise SystemExit(
            f'error: CUDA is not usable ({_why_no_cuda()}) but this machine '
            f'has signs of an NVIDIA GPU ({", ".join(evidence)}); fix the '
            'driver or CUDA_VISIBLE_DEVICES, or pass --device cpu to run '
            'on the CPU on purpose')
    return 'cpu', 'no NVIDIA GPU on this machine'


def select_device(cfg: Config,
                  requested: str = 'auto',
                  amp_requested: bool = False) -> str:
    """``--device``: pick the device and log it, first thing.

    Call before anything else of the run (the process group, pre-flight,
    the Runner). The line ``device: ...`` says which device runs and, on
    the CPU, what :func:`adapt_cfg_to_device` will change; the tools'
    ``build_runner`` changes it, and logs each change again to the run's
    log file. Only local rank 0 of each node logs, or prints the error
    line (the others exit with code 1).

    Args:
        cfg (Config): The tool's config (``launcher``); not changed.
        requested (str): 'auto', 'cuda' or 'cpu'. Defaults to 'auto'.
        amp_requested (bool): ``--amp``. Defaults to False.

    Returns:
        str: 'cuda' or 'cpu'.
    """
    first = _local_rank(cfg.get('launcher', 'none')) == 0
    try:
        device, why = resolve_device(requested)
    except SystemExit as e:
        raise SystemExit(e.code if first else 1) from None
    if device == 'cuda':
        index = _local_rank(cfg.get('launcher', 'none'))
        count = torch.cuda.device_count()
        why = f'{count} x {torch.cuda.get_device_name(min(index, count - 1))}'
        message = f'device: cuda ({why})'
    else:
        changes = adapt_cfg_to_device(
            copy.deepcopy(cfg), amp_requested=amp_requested)
        message = f'device: cpu ({why})' + (
            f'; config: {", ".join(changes)}' if changes else '')
    if first:
        print_log(message, logger='current')
    return device


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

    The tools' ``build_runner`` calls it after :func:`select_device` has
    decided whether the CPU is meant.

    Returns:
        list[str]: What was changed, one line each (empty with CUDA).
    """
    if cuda_usable():
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
    """``build_runner``'s record of :func:`adapt_cfg_to_device`'s changes
    (console and the run's log file)."""
    for change in changes:
        print_log(f'no CUDA on this machine: {change}', logger='current')
