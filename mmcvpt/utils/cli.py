"""Command-line flags of tools/train.py and tools/test.py that edit a config.

The flags are mmpretrain's and mmseg's (``--resume [CKPT]``,
``--auto-scale-lr``, ``--no-validate``, ``--no-pin-memory``,
``--no-persistent-workers``, ``--tta``). A flag the config cannot honour
stops the tool with one ``error: ...`` line.
"""
import difflib
import glob
import os.path as osp

from mmengine.config import Config

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
