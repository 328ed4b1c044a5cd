"""Test (and evaluate) an mmseg or mmpretrain config (mmseg's CLI)."""
import argparse

import mmcvpt  # noqa: F401  (registrations, checkpoint allow-list)
from mmcvpt.launch import (add_launch_args, build_runner,
                           distributed_session, enable_tta,
                           enable_visualization, load_cli_config,
                           parse_launch_args)
from mmcvpt.launch.device import select_device


def parse_args():
    parser = argparse.ArgumentParser(description='Test (and evaluate) a '
                                     'segmentor or classifier')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='the directory to save the file containing evaluation metrics')
    parser.add_argument(
        '--out',
        help='directory to save predictions for offline evaluation '
        '(mmseg) or a pickle file of results (mmpretrain)')
    parser.add_argument(
        '--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir', help='directory where painted images will be saved')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument(
        '--tta', action='store_true', help='test time augmentation')
    add_launch_args(parser)
    return parse_launch_args(parser)


def main():
    args = parse_args()
    cfg = load_cli_config(args.config, args.launcher, args.cfg_options,
                          args.work_dir)
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        enable_visualization(cfg, args.show, args.show_dir, args.wait_time)
    if args.tta:
        enable_tta(cfg)
    if args.out is not None:
        if cfg.get('default_scope') == 'mmpretrain':
            cfg.test_evaluator = [cfg.test_evaluator] if isinstance(
                cfg.test_evaluator, dict) else list(cfg.test_evaluator)
            cfg.test_evaluator.append(
                dict(type='DumpResults', out_file_path=args.out))
        else:
            cfg.test_evaluator['output_dir'] = args.out
            cfg.test_evaluator['keep_results'] = True
    select_device(cfg, args.device)
    with distributed_session(cfg):
        build_runner(
            cfg, ('test_dataloader', ),
            check_images=args.check_images,
            skip_preflight=args.skip_preflight).test()


if __name__ == '__main__':
    main()
