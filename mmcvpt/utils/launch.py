"""What tools/train.py and tools/test.py do to a config before running it.

One place for both tools, for mmseg and mmpretrain configs alike.
"""
import contextlib
import gc
import os
import os.path as osp
import re
import signal
import threading
import traceback

import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner, find_latest_checkpoint

from ..models.utils.pretrained import CheckpointError
from .batch import resolve_total_batch_size
from .cli import config_not_found
from .preflight import preflight_once

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


# The message itself, or the last line of a DataLoader worker's re-raised
# traceback (whose source lines quote the f-string too).
_LOAD_FAILED = re.compile(r'^(?:AssertionError: )?failed to load image: (.+)$',
                          re.MULTILINE)


def failed_image(exc: BaseException):
    """The image or annotation a loading transform failed on, or None.

    Knows mmcv's ``'failed to load image: PATH'`` (cv2 decoded nothing; also
    inside a DataLoader worker's re-raised error) and, in the main process,
    any exception raised inside ``LoadImageFromFile``/``LoadAnnotations``.

    Returns:
        tuple[str, str] | None: The file and the reason.
    """
    from mmcv.transforms import LoadAnnotations, LoadImageFromFile
    match = _LOAD_FAILED.search(str(exc))
    if match:
        return match.group(1).strip(), 'no image data could be decoded'
    path, tb = None, exc.__traceback__
    while tb is not None:
        local = tb.tb_frame.f_locals
        results = local.get('results')
        if isinstance(results, dict):
            if isinstance(local.get('self'), LoadImageFromFile):
                path = results.get('img_path', path)
            elif isinstance(local.get('self'), LoadAnnotations):
                path = results.get('seg_map_path', path)
        tb = tb.tb_next
    if path is None:
        return None
    return path, f'{type(exc).__name__}: {exc}'.splitlines()[0]


def config_build_error(exc: BaseException):
    """One line for an error raised while mmengine built a class from the
    config (a bad argument value, an unknown ``type``), else None.

    Recognised by mmengine's ``build_from_cfg`` on the traceback; the line
    names the class being built and the class's own message.
    """
    if not isinstance(exc, (ValueError, KeyError, TypeError)):
        return None
    message = str(exc.args[0] if isinstance(exc, KeyError) and exc.args else
                  exc)
    if not message or '\n' in message or (isinstance(exc, TypeError) and
                                          'argument' not in message):
        return None
    name, tb = None, exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_name == 'build_from_cfg' and \
                'mmengine' in frame.f_code.co_filename:
            cls = frame.f_locals.get('obj_cls')
            name = getattr(cls, '__name__', None) or \
                frame.f_locals.get('obj_type') or 'the config'
        tb = tb.tb_next
    if name is None:
        return None
    return f'error: cannot build {name} from the config: {message}'


_PEER_LOST = re.compile(r'Connection (?:closed|reset) by peer|Broken pipe')


def _peer_lost(exc: BaseException):
    """One line for a rank whose partner died first (its error says why)."""
    match = _PEER_LOST.search(str(exc))
    if match is None or not dist.is_initialized():
        return None
    return (f'error: rank {dist.get_rank()} stopped: another rank ended '
            f'first ({match.group(0)}); its error above says why')


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
    then stop with one line each too.

    Args:
        cfg (Config): The tool's config (``launcher``, ``work_dir``).
        resume_hint (bool): Name the checkpoint to resume from in the
            image error (training). Defaults to False.
    """
    init_distributed(cfg)
    try:
        yield
        if dist.is_initialized():
            dist.barrier()  # here, so that a dead partner is one line too
    except CheckpointError as e:  # a checkpoint that does not fit the model
        _release_frames(e)
        raise SystemExit(f'error: {e}') from None
    except Exception as e:
        bad, lost = failed_image(e), _peer_lost(e)
        build = config_build_error(e) if bad is None else None
        _release_frames(e)
        if build is not None:
            raise SystemExit(build) from None
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


def load_cli_config(config: str,
                    launcher: str = 'none',
                    cfg_options: dict = None,
                    work_dir: str = None) -> Config:
    """The config as mmseg's tools assemble it from their command line.

    ``--cfg-options`` are merged, ``--work-dir`` wins over the config's
    ``work_dir``, which defaults to ``./work_dirs/<config name>``.
    """
    if not osp.isfile(config):
        raise SystemExit(config_not_found(config))
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


def add_preflight_args(parser) -> None:
    """``--check-images`` and ``--skip-preflight`` for train.py/test.py."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        '--check-images',
        action='store_true',
        help='pre-flight: fully decode every image and segmentation map '
        '(process pool, progress for large sets) instead of reading their '
        'headers; finds truncated files before they stop the run')
    group.add_argument(
        '--skip-preflight',
        action='store_true',
        help='skip the pre-flight checks (data root, files, image and '
        'annotation headers, backbone arguments), which otherwise run once '
        'on rank 0 before anything is built')


def build_runner(cfg: Config,
                 loaders: tuple,
                 amp_requested: bool = False,
                 check_images: bool = False,
                 skip_preflight: bool = False):
    """Fit the config to this machine, check the inputs, build the runner.

    The process group is started first (if the tool's
    :func:`distributed_session` has not already), so that the checks run
    once, on rank 0. A problem with any of ``loaders`` exits every rank
    with the same one-line ``error: ...`` before anything is written.

    Args:
        cfg (Config): The tool's config.
        loaders (tuple[str]): Dataloader keys to check.
        amp_requested (bool): ``--amp``. Defaults to False.
        check_images (bool): ``--check-images``: decode every image and
            segmentation map. Defaults to False (headers only).
        skip_preflight (bool): ``--skip-preflight``. Defaults to False.
    """
    changes = adapt_cfg_to_device(cfg, amp_requested=amp_requested)
    init_distributed(cfg)
    resolve_total_batch_size(cfg, loaders)
    if not skip_preflight:
        preflight_once(cfg, loaders, deep=check_images)
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else \
        Runner.from_cfg(cfg)
    log_device_changes(changes)
    return runner
