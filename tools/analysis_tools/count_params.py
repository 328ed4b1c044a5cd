"""Total / trainable / per-module parameters and FLOPs of a config's model.

FLOPs come from mmengine's analyzer (no fvcore) at the config's input size
(the segmentation crop or the backbone's image size), one image.

Example::

    python tools/analysis_tools/count_params.py configs/cvpt_vitb_ade20k.py
"""
import argparse
import inspect

import torch
import torch.nn as nn
from mmengine.config import DictAction
from mmengine.registry import MODELS

import mmcvpt  # noqa: F401
from mmcvpt.models.utils import trainable_parameter_report
from mmcvpt.launch import load_cli_config


def input_size(cfg):
    size = cfg.model.get('data_preprocessor', {}).get('size')
    if size is None:
        size = cfg.model.backbone.get('img_size', 224)
    return (size, size) if isinstance(size, int) else tuple(size)


class _EncodeDecode(nn.Module):
    """A segmentor whose head's forward needs data samples (Mask2Former):
    images (B, 3, H, W) -> seg logits through ``encode_decode``."""

    def __init__(self, segmentor):
        super().__init__()
        self.segmentor = segmentor

    def forward(self, inputs):
        shape = tuple(inputs.shape[-2:])
        metas = [dict(img_shape=shape, pad_shape=shape, ori_shape=shape)
                 ] * len(inputs)
        return self.segmentor.encode_decode(inputs, metas)


def flop_target(model):
    """The module FlopAnalyzer runs: the model, or :class:`_EncodeDecode`
    where ``mode='tensor'`` cannot run the decode head."""
    head = getattr(model, 'decode_head', None)
    if head is not None and 'batch_data_samples' in inspect.signature(
            head.forward).parameters:
        return _EncodeDecode(model)
    return model


def count(cfg, depth=1, flops=True, shape=None):
    """-> (parameter report, FLOPs or None, input shape)."""
    cfg.model.backbone.init_cfg = None  # counting needs no weights
    with MODELS.switch_scope_and_registry(cfg.get('default_scope')) as reg:
        model = reg.build(cfg.model)
    model.eval()
    report = trainable_parameter_report(model, depth=depth, logger=None)
    shape = shape or input_size(cfg)
    total_flops = None
    if flops:
        from mmengine.analysis import FlopAnalyzer
        with torch.no_grad():
            analyzer = FlopAnalyzer(
                flop_target(model), torch.zeros(1, 3, *shape))
            analyzer.unsupported_ops_warnings(False)
            analyzer.uncalled_modules_warnings(False)
            total_flops = analyzer.total()
    return report, total_flops, shape


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument(
        '--depth',
        type=int,
        default=1,
        help='name depth of the per-module breakdown')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'))
    parser.add_argument('--no-flops', action='store_true')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(argv)
    cfg = load_cli_config(args.config, cfg_options=args.cfg_options)
    report, flops, shape = count(cfg, args.depth, not args.no_flops,
                                 tuple(args.shape) if args.shape else None)
    print(f'{args.config}: {report["summary"]}')
    for name, (trainable, total) in report['modules'].items():
        print(f'  {name}: trainable {trainable:,} / {total:,}')
    if flops is not None:
        print(f'FLOPs at 1x3x{shape[0]}x{shape[1]}: {flops / 1e9:.2f} G '
              '(multiply-adds, ops mmengine counts)')


if __name__ == '__main__':
    main()
