"""Train an mmseg or mmpretrain config (mmseg's tools/train.py CLI).

On a machine without CUDA the config runs on the CPU as it is: see
``mmcvpt.utils.adapt_cfg_to_device``.
"""
import argparse
import sys
import logging
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import mmcvpt  # noqa: F401  (registrations, checkpoint allow-list)
from mmcvpt.utils import (PreflightError, preflight, adapt_cfg_to_device,
                          enable_amp, init_cpu_distributed, log_device_changes)


def parse_args():
    parser = argparse.ArgumentParser(description='Train a segmentor or '
                                     'classifier')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        action='store_true',
        default=False,
        help='resume from the latest checkpoint in the work_dir '
        'automatically')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training (bf16 on CPU)')
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
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        enable_amp(cfg)
    if args.resume:
        cfg.resume = True
    try:
        preflight(cfg, ('train_dataloader', 'val_dataloader'))
    except PreflightError as e:
        sys.exit(f'error: {e}')
    changes = adapt_cfg_to_device(cfg, amp_requested=args.amp)
    init_cpu_distributed(cfg.launcher)

    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else \
        Runner.from_cfg(cfg)
    log_device_changes(changes)
    if args.amp and cfg.optim_wrapper.type == 'CPUAmpOptimWrapper':
        print_log(
            '--amp on CPU: bf16 autocast',
            logger='current',
            level=logging.WARNING)
    runner.train()


if __name__ == '__main__':
    main()
