"""Merge a PEFT checkpoint with its pretrained backbone into a full one.

The result is a plain mmengine checkpoint (``meta`` + ``state_dict``) that
mmseg/mmpretrain tools and Inferencers load like any other.

Example::

    python tools/peft/export_full.py configs/cvpt_vitb_ade20k.py \\
        work_dirs/cvpt_vitb_ade20k/iter_160000_peft.pth full.pth
"""
import argparse
import sys

from mmengine.config import DictAction
from mmengine.registry import MODELS

import mmcvpt  # noqa: F401
from mmcvpt.peft import load_peft_checkpoint
from mmcvpt.launch import load_cli_config
from mmcvpt.utils import atomic_torch_save


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        'config', help='the config the PEFT file was '
        'trained with')
    parser.add_argument('peft', help='*_peft.pth file')
    parser.add_argument('out', help='full checkpoint to write')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(argv)
    cfg = load_cli_config(args.config, cfg_options=args.cfg_options)
    with MODELS.switch_scope_and_registry(cfg.get('default_scope')) as reg:
        model = reg.build(cfg.model)
    try:
        meta = load_peft_checkpoint(model, args.peft)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f'error: {e}')
    state = model.state_dict()
    atomic_torch_save(
        dict(meta=dict(meta, merged_from=args.peft), state_dict=state),
        args.out)
    pretrained = next(iter(meta['peft'].values())).get('pretrained')
    source = f'{args.peft} + frozen tensors of {pretrained}' if pretrained \
        else f'{args.peft} (no pretrained file: it holds every tensor)'
    print(f'wrote {args.out}: {len(state)} tensors from {source}')


if __name__ == '__main__':
    main()
