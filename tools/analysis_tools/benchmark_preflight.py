"""Time the pre-flight checks on a generated ADE20K-layout tree.

Writes ``--num`` image/annotation pairs (``images/training/*.jpg``,
``annotations/training/*.png``: the same small valid files, so the tree is
written in seconds) and times the header check (the default before every
run) and the deep check (``--check-images``: every file decoded in a
process pool). Times include building mmseg's ADE20KDataset (directory
scan). The files are in the page cache: a cold shared filesystem is slower.

Example::

    python tools/analysis_tools/benchmark_preflight.py --num 25000
"""
import argparse
import os
import os.path as osp
import shutil
import tempfile
import time

import cv2
import numpy as np
from mmengine.config import Config

import mmcvpt  # noqa: F401
from mmcvpt.launch.preflight import check_dataset


def make_tree(root, num, size=32):
    """``num`` ADE20K-style pairs under ``root``; returns ``root``."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (size, size, 3), np.uint8)
    label = rng.integers(0, 150, (size, size), np.uint8)
    jpg = cv2.imencode('.jpg', image)[1].tobytes()
    png = cv2.imencode('.png', label)[1].tobytes()
    for folder, data, suffix in (('images', jpg, '.jpg'), ('annotations', png,
                                                           '.png')):
        split = osp.join(root, folder, 'training')
        os.makedirs(split, exist_ok=True)
        for i in range(num):
            with open(osp.join(split, f'ADE_train_{i + 1:08d}{suffix}'),
                      'wb') as f:
                f.write(data)
    return root


def ade20k_cfg(root):
    return Config(
        dict(
            default_scope='mmseg',
            train_dataloader=dict(
                dataset=dict(
                    type='ADE20KDataset',
                    data_root=root,
                    data_prefix=dict(
                        img_path='images/training',
                        seg_map_path='annotations/training'),
                    pipeline=[]))))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--num', type=int, default=25000)
    parser.add_argument(
        '--size', type=int, default=32, help='image side in pixels')
    parser.add_argument(
        '--root', help='reuse/keep the tree here (default: a temp folder)')
    parser.add_argument('--no-deep', action='store_true')
    args = parser.parse_args(argv)
    root = args.root or tempfile.mkdtemp(prefix='preflight_bench_')
    try:
        start = time.perf_counter()
        if not osp.isdir(osp.join(root, 'images')):
            make_tree(root, args.num, args.size)
        print(f'tree: {args.num} pairs of {args.size}x{args.size} files in '
              f'{root} ({time.perf_counter() - start:.1f} s to write)')
        cfg = ade20k_cfg(root)
        modes = [False] if args.no_deep else [False, True]
        for deep in modes:
            start = time.perf_counter()
            count = check_dataset(cfg, 'train_dataloader', deep=deep)
            took = time.perf_counter() - start
            name = 'deep (--check-images, ' \
                f'{len(os.sched_getaffinity(0))} processes)' if deep \
                else 'headers (default)'
            print(f'pre-flight {name}: {count} samples in {took:.2f} s')
    finally:
        if args.root is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == '__main__':
    main()
