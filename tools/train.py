"""Train an mmseg or mmpretrain config (mmseg's tools/train.py CLI).

``--device auto`` (default) falls back to the CPU only on a machine with no
NVIDIA GPU, adapting the config (``mmcvpt.launch.adapt_cfg_to_device``);
``--device cpu`` runs on the CPU on purpose.
"""
import argparse
import logging

from mmengine.logging import print_log

import mmcvpt  # noqa: F401  (registrations, checkpoint allow-list)
from mmcvpt.launch import (add_launch_args, apply_train_flags,
                           build_runner, distributed_session, enable_amp,
                           load_cli_config, parse_launch_args)
from mmcvpt.launch.device import select_device
from mmcvpt.launch.preemption import (raise_if_preempted,
                                      resume_after_preemption)


def parse_args():
    parser = argparse.ArgumentParser(description='Train a segmentor or '
                                     'classifier')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the given checkpoint, or with no value from the '
        'latest checkpoint in the work_dir')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training (bf16 on CPU)')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the lr by the total batch / auto_scale_lr.'
        'base_batch_size (default: the config\'s total_batch_size)')
    parser.add_argument(
        '--no-validate',
        action='store_true',
        help='do not evaluate during training')
    parser.add_argument(
        '--no-pin-memory',
        action='store_true',
        help='pin_memory=False in every dataloader')
    parser.add_argument(
        '--no-persistent-workers',
        action='store_true',
        help='persistent_workers=False in every dataloader')
    add_launch_args(parser)
    return parse_launch_args(parser)


def train(cfg, args):
    runner = build_runner(
        cfg, ('train_dataloader', ) if args.no_validate else
        ('train_dataloader', 'val_dataloader'),
        amp_requested=args.amp,
        check_images=args.check_images,
        skip_preflight=args.skip_preflight)
    if args.amp and cfg.optim_wrapper.type == 'CPUAmpOptimWrapper':
        print_log(
            '--amp on CPU: bf16 autocast',
            logger='current',
            level=logging.WARNING)
    runner.train()
    raise_if_preempted(runner)  # SIGTERM/SIGUSR1: exit 128 + signal


def main():
    args = parse_args()
    cfg = load_cli_config(args.config, args.launcher, args.cfg_options,
                          args.work_dir)
    if args.amp:
        enable_amp(cfg)
    apply_train_flags(cfg, args)
    resume_after_preemption(cfg, args.resume)  # a requeued job
    select_device(cfg, args.device, amp_requested=args.amp)
    # The runner lives in train()'s frame only: the session can free it
    # before it destroys the process group.
    with distributed_session(cfg, resume_hint=True):
        train(cfg, args)


if __name__ == '__main__':
    main()
