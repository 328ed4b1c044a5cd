"""Merge a PEFT checkpoint with its pretrained backbone into a full one.

The result is a plain mmengine checkpoint (``meta`` + ``state_dict``) that
mmseg/mmpretrain tools and Inferencers load like any other.

Example::

    python tools/peft/export_full.py configs/cvpt_vitb_ade20k.py \\
        work_dirs/cvpt_vitb_ade20k/iter_160000_peft.pth full.pth
"""
import argparse
import os
import os.path as osp
import sys
import tempfile

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import MODELS

import mmcvpt  # noqa: F401
from mmcvpt.engine import load_peft_checkpoint


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        'config', help='the config the PEFT file was '
        'trained with')
    parser.add_argument('peft', help='*_peft.pth file')
    parser.add_argument('out', help='full checkpoint to write')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    with MODELS.switch_scope_and_registry(cfg.get('default_scope')) as reg:
        model = reg.build(cfg.model)
    try:
        meta = load_peft_checkpoint(model, args.peft)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f'error: {e}')
    out_dir = osp.dirname(osp.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_dir, suffix='.tmp')
    os.close(fd)
    try:
        torch.save(
            dict(
                meta=dict(meta, merged_from=args.peft),
                state_dict=model.state_dict()), tmp)
        os.replace(tmp, args.out)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    print(f'{args.peft} + {meta["peft"].get("pretrained")} -> {args.out}')


if __name__ == '__main__':
    main()
