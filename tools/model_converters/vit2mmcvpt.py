"""Convert a pretrained ViT into the key layout CVPTViT/VPTViT load.

That layout is mmpretrain's VisionTransformer (``patch_embed.projection``,
``layers.{i}.attn.qkv``, ``layers.{i}.ffn.layers.0.0``, ``ln1``...).
Supported inputs:

* Google's ViT ``.npz`` (``Transformer/encoderblock_0/...``), e.g. the
  ImageNet-21k ``ViT-B_16.npz`` the CVPT paper starts from;
* timm state dicts (``blocks.0.attn.qkv.weight``...), ``.pth``/``.bin`` or
  ``.safetensors``;
* mmseg VisionTransformer checkpoints (``layers.0.attn.attn.in_proj_weight``,
  with or without a ``backbone.`` prefix).

Classifier heads are dropped. Example::

    python tools/model_converters/vit2mmcvpt.py ViT-B_16.npz \\
        pretrain/vit-b16_in21k.pth
"""
import argparse
import os.path as osp
import re
import sys

import numpy as np
import torch

from mmcvpt.utils.io import atomic_torch_save

# Keys that belong to classification heads; never part of a backbone.
DROP = re.compile(r'^(head|pre_logits|fc_norm|head_drop|decode_head|'
                  r'auxiliary_head|neck)([./]|$)')


class ConversionError(ValueError):
    pass


def _t(array):
    return torch.from_numpy(np.ascontiguousarray(array)).float()


def convert_google_npz(arrays: dict) -> tuple:
    """Google's flax ViT arrays -> (state_dict, dropped keys)."""
    out, used = {}, set()

    def take(key):
        used.add(key)
        return arrays[key]

    kernel = take('embedding/kernel')  # (p, p, 3, C), HWIO
    out['patch_embed.projection.weight'] = _t(kernel.transpose(3, 2, 0, 1))
    out['patch_embed.projection.bias'] = _t(take('embedding/bias'))
    out['cls_token'] = _t(take('cls'))
    out['pos_embed'] = _t(take('Transformer/posembed_input/pos_embedding'))
    num_layers = len({
        k.split('/')[1]
        for k in arrays if k.startswith('Transformer/encoderblock_')
    })
    for i in range(num_layers):
        src, dst = f'Transformer/encoderblock_{i}/', f'layers.{i}.'
        att = src + 'MultiHeadDotProductAttention_1/'
        for norm_src, norm_dst in (('LayerNorm_0', 'ln1'), ('LayerNorm_2',
                                                            'ln2')):
            out[dst + norm_dst + '.weight'] = _t(
                take(f'{src}{norm_src}/scale'))
            out[dst + norm_dst + '.bias'] = _t(take(f'{src}{norm_src}/bias'))
        # query/key/value kernels are (C, heads, d); biases (heads, d).
        qkv_w, qkv_b = [], []
        for name in ('query', 'key', 'value'):
            w = take(f'{att}{name}/kernel')
            qkv_w.append(w.reshape(w.shape[0], -1).T)
            qkv_b.append(take(f'{att}{name}/bias').reshape(-1))
        out[dst + 'attn.qkv.weight'] = _t(np.concatenate(qkv_w, axis=0))
        out[dst + 'attn.qkv.bias'] = _t(np.concatenate(qkv_b, axis=0))
        w = take(f'{att}out/kernel')  # (heads, d, C)
        out[dst + 'attn.proj.weight'] = _t(w.reshape(-1, w.shape[-1]).T)
        out[dst + 'attn.proj.bias'] = _t(take(f'{att}out/bias'))
        for j, fc in enumerate(('ffn.layers.0.0', 'ffn.layers.1')):
            out[f'{dst}{fc}.weight'] = _t(
                take(f'{src}MlpBlock_3/Dense_{j}/kernel').T)
            out[f'{dst}{fc}.bias'] = _t(
                take(f'{src}MlpBlock_3/Dense_{j}/bias'))
    out['ln1.weight'] = _t(take('Transformer/encoder_norm/scale'))
    out['ln1.bias'] = _t(take('Transformer/encoder_norm/bias'))
    return out, sorted(set(arrays) - used)


TIMM_RULES = [
    (r'^patch_embed\.proj\.', 'patch_embed.projection.'),
    (r'^blocks\.(\d+)\.norm1\.', r'layers.\1.ln1.'),
    (r'^blocks\.(\d+)\.norm2\.', r'layers.\1.ln2.'),
    (r'^blocks\.(\d+)\.attn\.', r'layers.\1.attn.'),
    (r'^blocks\.(\d+)\.mlp\.fc1\.', r'layers.\1.ffn.layers.0.0.'),
    (r'^blocks\.(\d+)\.mlp\.fc2\.', r'layers.\1.ffn.layers.1.'),
    (r'^norm\.', 'ln1.'),
    (r'^(cls_token|pos_embed)$', r'\1'),
]

MMSEG_RULES = [
    (r'^patch_embed\.projection\.', 'patch_embed.projection.'),
    (r'^layers\.(\d+)\.ln([12])\.', r'layers.\1.ln\2.'),
    (r'^layers\.(\d+)\.attn\.attn\.in_proj_', r'layers.\1.attn.qkv.'),
    (r'^layers\.(\d+)\.attn\.attn\.out_proj\.', r'layers.\1.attn.proj.'),
    (r'^layers\.(\d+)\.ffn\.', r'layers.\1.ffn.'),
    (r'^ln1\.', 'ln1.'),
    (r'^(cls_token|pos_embed)$', r'\1'),
]


def _rename(state: dict, rules) -> tuple:
    out, dropped = {}, []
    for key, value in state.items():
        for pattern, repl in rules:
            new, n = re.subn(pattern, repl, key)
            if n:
                out[new] = value.float()
                break
        else:
            dropped.append(key)
    return out, dropped


def detect_layout(keys) -> str:
    keys = set(keys)
    if 'Transformer/encoder_norm/scale' in keys:
        return 'google'
    if any(k.startswith('blocks.0.attn.qkv') for k in keys):
        return 'timm'
    if any(k.startswith('layers.0.attn.attn.in_proj') for k in keys):
        return 'mmseg'
    raise ConversionError(
        'unknown checkpoint layout: expected Google ViT .npz keys '
        "('Transformer/encoderblock_0/...'), timm keys ('blocks.0.attn.qkv."
        "weight') or mmseg ViT keys ('layers.0.attn.attn.in_proj_weight'); "
        f'first keys found: {sorted(keys)[:5]}')


def load_source(path: str) -> dict:
    """Read a checkpoint as a flat dict name -> array/tensor."""
    if not osp.isfile(path):
        raise ConversionError(f'input checkpoint not found: {path}')
    if path.endswith('.npz'):
        with np.load(path) as f:
            return {k: f[k] for k in f.files}
    if path.endswith('.safetensors'):
        from safetensors.torch import load_file
        return load_file(path)
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    for key in ('state_dict', 'model', 'module'):
        if isinstance(ckpt, dict) and isinstance(ckpt.get(key), dict):
            ckpt = ckpt[key]
            break
    prefixes = ('backbone.', 'module.')
    return {
        next((k[len(p):] for p in prefixes if k.startswith(p)), k): v
        for k, v in ckpt.items() if torch.is_tensor(v)
    }


def convert(state: dict) -> tuple:
    """-> (mmpretrain-layout state dict, layout name, dropped keys)."""
    layout = detect_layout(state)
    heads = [k for k in state if DROP.match(k)]
    state = {k: v for k, v in state.items() if k not in heads}
    if layout == 'google':
        out, dropped = convert_google_npz(state)
    else:
        out, dropped = _rename(state,
                               TIMM_RULES if layout == 'timm' else MMSEG_RULES)
    return out, layout, sorted(heads) + dropped


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        'src',
        help='Google .npz, timm .pth/.safetensors or '
        'mmseg ViT checkpoint')
    parser.add_argument('dst', help='output .pth (mmpretrain ViT layout)')
    args = parser.parse_args(argv)
    try:
        state, layout, dropped = convert(load_source(args.src))
    except (ConversionError, KeyError) as e:
        sys.exit(f'vit2mmcvpt: {args.src}: {e}')
    num_layers = len(
        {k.split('.')[1]
         for k in state if k.startswith('layers.')})
    print(f'{args.src}: {layout} layout, {num_layers} layers, '
          f'{len(state)} tensors mapped, embed dims '
          f'{state["cls_token"].shape[-1]}, pos_embed '
          f'{tuple(state["pos_embed"].shape)}')
    if dropped:
        print(f'dropped {len(dropped)} keys: {", ".join(dropped)}')
    atomic_torch_save(
        dict(state_dict=state, meta=dict(source=args.src, layout=layout)),
        args.dst)
    print(f'saved {args.dst}')


if __name__ == '__main__':
    main()
