"""Command-line flags of tools/train.py and tools/test.py that edit a config.

The flags are mmpretrain's and mmseg's (``--resume [CKPT]``,
``--auto-scale-lr``, ``--no-validate``, ``--no-pin-memory``,
``--no-persistent-workers``, ``--tta``). A flag the config cannot honour
stops the tool with one ``error: ...`` line. Also here: the config as
the tools read it from their command line (:func:`load_cli_config`).
"""
import difflib
import glob
import os
import os.path as osp

from mmengine.config import Config, DictAction

from .device import DEVICES

LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def config_not_found(path: str) -> str:
    """One line for a config path that is not a file, naming the closest
    config of that folder (of configs/ if the folder does not exist)."""
    folder = osp.dirname(path) or '.'
    pattern = osp.join(folder, '*.py') if osp.isdir(folder) else \
        osp.join('configs', '**', '*.py')
    by_name = {
        osp.basename(c): c
        for c in sorted(glob.glob(pattern, recursive=True))
    }
    close = difflib.get_close_matches(osp.basename(path), by_name, n=1)
    hint = f"; did you mean '{by_name[close[0]]}'?" if close else ''
    return f"error: config '{path}' not found{hint}"


def apply_train_flags(cfg: Config, args) -> None:
    """Fold tools/train.py's mmpretrain-style flags into ``cfg``.

    Args:
        cfg (Config): The training config; changed in place.
        args (Namespace): ``resume`` (None, 'auto' or a checkpoint),
            ``auto_scale_lr``, ``no_validate``, ``no_pin_memory``,
            ``no_persistent_workers``.
    """
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        if '://' not in args.resume and not osp.isfile(args.resume):
            raise SystemExit(f"error: --resume: checkpoint '{args.resume}' "
                             'not found; give a file, or --resume alone for '
                             'the latest checkpoint in the work_dir')
        cfg.resume = True
        cfg.load_from = args.resume
    if args.auto_scale_lr:
        scale = dict(cfg.get('auto_scale_lr') or {}, enable=True)
        if scale.get('base_batch_size') is None and \
                cfg.get('total_batch_size') is None:
            raise SystemExit(
                f'error: --auto-scale-lr needs auto_scale_lr.base_batch_size '
                f'(the total batch the lr was tuned for) or total_batch_size '
                f'in {cfg.filename}')
        cfg.auto_scale_lr = scale
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    for key in LOADERS:
        loader = cfg.get(key)
        if not loader:
            continue
        if args.no_pin_memory:
            loader.pin_memory = False
        if args.no_persistent_workers:
            loader.persistent_workers = False


def enable_tta(cfg: Config) -> None:
    """``--tta``: test with the config's ``tta_pipeline`` and ``tta_model``
    (mmseg's dataset bases define both)."""
    missing = [k for k in ('tta_pipeline', 'tta_model') if not cfg.get(k)]
    if missing:
        raise SystemExit(
            f"error: --tta needs {' and '.join(missing)} in {cfg.filename}; "
            "compose it from a dataset base that has them (e.g. "
            "'mmseg::_base_/datasets/ade20k.py') or define them")
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    cfg.tta_model.module = cfg.model
    cfg.model = cfg.tta_model


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
    try:
        cfg = Config.fromfile(config)
    except ImportError as e:  # custom_imports wraps mmcvpt's line twice
        cause = e
        while cause is not None:
            if isinstance(cause, ImportError) and str(cause).startswith(
                    'mmcvpt'):
                raise SystemExit(f'error: {cause}') from None
            cause = cause.__context__
        raise
    cfg.launcher = launcher
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config))[0])
    return cfg


def add_launch_args(parser) -> None:
    """The arguments train.py and test.py share: ``--cfg-options``,
    ``--launcher``, ``--check-images`` / ``--skip-preflight``, ``--device``
    (:func:`~mmcvpt.launch.device.select_device`) and the launcher's
    ``--local-rank``."""
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file.')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
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
    parser.add_argument(
        '--device',
        choices=DEVICES,
        default='auto',
        help='auto (default): CUDA if usable, the CPU on a machine with no '
        'NVIDIA GPU, an error where a GPU is present but CUDA is not usable; '
        'cpu: run on the CPU on purpose (CUDA hidden); cuda: CUDA or an '
        'error')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_launch_args(parser):
    """``parser.parse_args()``; ``LOCAL_RANK`` from ``--local-rank`` when
    the launcher did not set it (mmseg's tools)."""
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args
