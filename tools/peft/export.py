"""Write a PEFT checkpoint as a PEFT file in another format, or merged.

``--format safetensors`` writes the tuned tensors as ``.safetensors`` with
the metadata (the checkpoint's ``meta``, JSON) in the file's header; every
loader (``load_from``, ``tools/test.py``, ``init_model``, the Inferencers)
takes it after ``import mmcvpt``. ``--full`` merges in the frozen tensors of
the pretrained backbone (``tools/peft/export_full.py``). The PEFT file is
loaded into the config's model first: a file that does not fit is refused.

Example::

    python tools/peft/export.py configs/cvpt_vitb_ade20k.py \\
        work_dirs/cvpt_vitb_ade20k/iter_160000_peft.pth \\
        cvpt_vitb_ade20k_peft.safetensors --format safetensors
"""
import argparse
import sys

from mmengine.config import DictAction
from mmengine.registry import MODELS

import mmcvpt  # noqa: F401
from mmcvpt.launch import load_cli_config
from mmcvpt.peft import load_file, load_peft_checkpoint
from mmcvpt.peft.file_format import (SAFETENSORS_SUFFIX, save_file_form,
                                     to_file_form)

FORMATS = ('pth', 'safetensors')


def parse_args(argv=None, full=False):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        'config', help='the config the PEFT file was trained with')
    parser.add_argument('peft', help='PEFT file (*_peft.pth, .safetensors)')
    parser.add_argument('out', help='file to write')
    parser.add_argument(
        '--format', choices=FORMATS, default='pth',
        help='pth: mmengine checkpoint; safetensors: tensors + JSON header '
        '(OUT must end with .safetensors). Defaults to pth')
    if not full:
        parser.add_argument(
            '--full', action='store_true',
            help='merge in the frozen pretrained tensors: a full checkpoint')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(argv)
    args.full = full or args.full
    if (args.format == 'safetensors') != args.out.endswith(
            SAFETENSORS_SUFFIX):
        raise SystemExit(
            f"error: out '{args.out}' does not fit --format {args.format}: "
            f'a safetensors file is named *{SAFETENSORS_SUFFIX}, a pth file '
            'is not (loaders tell the format by the suffix)')
    return args


def main(argv=None, full=False):
    args = parse_args(argv, full)
    cfg = load_cli_config(args.config, cfg_options=args.cfg_options)
    with MODELS.switch_scope_and_registry(cfg.get('default_scope')) as reg:
        model = reg.build(cfg.model)
    try:
        meta = load_peft_checkpoint(model, args.peft, args.config)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f'error: {e}')
    entries = meta.pop('peft')
    if args.full:
        state = model.state_dict()
        save_file_form(dict(meta=dict(meta, merged_from=args.peft),
                            state_dict=state), args.out)
        entry = next(iter(entries.values()))
        pretrained = entry.get('pretrained_abspath') or \
            entry.get('pretrained')
        source = f'{args.peft} + frozen tensors of {pretrained}' \
            if pretrained else \
            f'{args.peft} (no pretrained file: it holds every tensor)'
        print(f'wrote {args.out}: {len(state)} tensors from {source}')
        return
    # The file's own tensors and entries, as trained (the model only
    # checked that they fit).
    ckpt = to_file_form(load_file(args.peft)['state_dict'], meta)
    save_file_form(ckpt, args.out)
    state = ckpt['state_dict']
    print(f'wrote {args.out}: {len(state)} tensors of {args.peft}, '
          f'metadata of {len(entries)} prompted backbone(s) in its '
          + ('header' if args.format == 'safetensors' else 'meta'))


if __name__ == '__main__':
    main()
