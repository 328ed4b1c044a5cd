"""Where in an image do the prompts act? Heat-maps per block.

For each chosen block, one row of panels over the image:

* ``CA/x``: how strongly the cross-attention changes each patch token,
  ||CA(x)|| / ||x|| (the attention over prompts always sums to one per patch,
  so its strength shows in the size of what it adds);
* ``prompt j``: the attention of each patch to prompt j, mean over heads.

Works for segmentation and classification configs with a CVPTViT backbone;
full or ``*_peft.pth`` checkpoints.

Example::

    python tools/visualization/prompt_attention.py CONFIG CKPT IMAGE \\
        --layers 0 5 11 --prompts 4 --out attention.png
"""
import argparse
import os.path as osp

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config, DictAction
from mmengine.registry import MODELS
from mmengine.runner import load_checkpoint

import mmcvpt  # noqa: F401
from mmcvpt.engine import load_peft_checkpoint
from mmcvpt.models import CVPTViT
from mmcvpt.models.layers import prompt_attention_probs


def build_model(config, checkpoint, cfg_options=None):
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    with MODELS.switch_scope_and_registry(cfg.get('default_scope')) as reg:
        model = reg.build(cfg.model)
    if not isinstance(getattr(model, 'backbone', None), CVPTViT):
        raise SystemExit(f'error: {config}: the backbone is not a CVPTViT')
    ckpt = torch.load(checkpoint, map_location='cpu', weights_only=True)
    if 'peft' in ckpt.get('meta', {}):
        load_peft_checkpoint(model, checkpoint)
    else:
        load_checkpoint(model, checkpoint, map_location='cpu')
    model.eval()
    return model


def image_size(model):
    size = getattr(model.data_preprocessor, 'size', None) or \
        model.backbone.img_size
    return (size, size) if isinstance(size, int) else tuple(size)


@torch.no_grad()
def prompt_attention(model, image_bgr, layers):
    """-> (resized image, {layer: (strength (h, w), probs (m, h, w))})."""
    h, w = image_size(model)
    image = cv2.resize(image_bgr, (w, h), interpolation=cv2.INTER_LINEAR)
    data = model.data_preprocessor(
        dict(inputs=[torch.from_numpy(image).permute(2, 0, 1)]), False)
    backbone = model.backbone
    records = {}
    original = backbone.cross_attention

    def recording(index, layer, x, prompts):
        out = original(index, layer, x, prompts)
        if index in layers:
            src = layer.attn if backbone.cross_attn is None else \
                backbone.cross_attn[index]
            probs = prompt_attention_probs(x, prompts, src.qkv.weight,
                                           src.qkv.bias, backbone.num_heads)
            strength = out.norm(dim=-1) / x.norm(dim=-1)
            records[index] = (strength[0], probs[0].mean(0))  # (N,), (N, m)
        return out

    backbone.cross_attention = recording  # this model object only
    try:
        backbone(data['inputs'])
    finally:
        del backbone.cross_attention
    stride = backbone.patch_embed.projection.stride
    gh, gw = h // stride[0], w // stride[1]
    extra = backbone.num_extra_tokens
    maps = {}
    for index, (strength, probs) in records.items():
        s = strength[extra:].reshape(gh, gw)
        p = probs[extra:].T.reshape(-1, gh, gw)
        maps[index] = (s, p)
    return image, maps


def _heat(values, size, image):
    v = values.float()
    v = (v - v.min()) / (v.max() - v.min() + 1e-12)
    v = F.interpolate(
        v[None, None], size=size, mode='bilinear', align_corners=False)[0, 0]
    colour = cv2.applyColorMap((v.numpy() * 255).astype(np.uint8),
                               cv2.COLORMAP_JET)
    return cv2.addWeighted(image, 0.45, colour, 0.55, 0)


def _label(panel, text):
    cv2.putText(panel, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                (255, 255, 255), 1, cv2.LINE_AA)
    return panel


def render(image, maps, num_prompts):
    """Grid: one row per layer; image | CA/x | prompt 0..k-1."""
    size = image.shape[:2]
    rows = []
    for index in sorted(maps):
        strength, probs = maps[index]
        row = [
            _label(image.copy(), f'block {index}'),
            _label(_heat(strength, size, image), 'CA/x')
        ]
        for j in range(min(num_prompts, probs.shape[0])):
            row.append(_label(_heat(probs[j], size, image), f'prompt {j}'))
        rows.append(np.concatenate(row, axis=1))
    return np.concatenate(rows, axis=0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('image')
    parser.add_argument(
        '--layers',
        type=int,
        nargs='+',
        default=None,
        help='blocks to show (default: first, middle, last)')
    parser.add_argument(
        '--prompts',
        type=int,
        default=4,
        help='how many prompts get their own panel')
    parser.add_argument('--out', default='prompt_attention.png')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(argv)
    if not osp.isfile(args.image):
        raise SystemExit(f'error: image not found: {args.image}')
    image = cv2.imread(args.image)
    if image is None:
        raise SystemExit(f'error: {args.image} is not a readable image')
    model = build_model(args.config, args.checkpoint, args.cfg_options)
    num_layers = model.backbone.num_layers
    layers = args.layers or sorted({0, num_layers // 2, num_layers - 1})
    bad = [i for i in layers if not 0 <= i < num_layers]
    if bad:
        raise SystemExit(f'error: --layers {bad} out of range: the backbone '
                         f'has blocks 0..{num_layers - 1}')
    resized, maps = prompt_attention(model, image, set(layers))
    grid = render(resized, maps, args.prompts)
    cv2.imwrite(args.out, grid)
    print(f'{args.out}: {grid.shape[1]}x{grid.shape[0]}, blocks {layers}')


if __name__ == '__main__':
    main()
