"""Where in an image do the prompts act? Heat-maps per block.

For each chosen block, one row of panels over the image:

* ``change by cross-attention``: how strongly the cross-attention changes
  each patch token, ||CA(x)|| / ||x|| (the attention over prompts always
  sums to one per patch, so its strength shows in the size of what it adds);
* ``prompt j``: the attention of each patch to prompt j, mean over heads.

Each heat map has a colour bar starting at 0; the prompt panels of a row
share one scale, so their values can be compared, with a line at 1/m, the
share of each of the m prompts when a patch attends to all alike. The image
keeps its aspect ratio: its shorter side is resized to the model's input
size, both sides to whole patches. Only patch tokens are drawn: the class
token and DINOv2's register tokens are left out.

Works for segmentation and classification configs with a CVPTViT backbone;
full or ``*_peft.pth`` checkpoints.

Example::

    python tools/visualization/prompt_attention.py CONFIG CKPT IMAGE \\
        --layers 0 5 11 --prompts 4 --out attention.png
"""
import argparse
import os.path as osp

import cv2
import torch
from mmengine.config import Config, DictAction
from mmengine.registry import MODELS
from mmengine.runner import load_checkpoint

import mmcvpt  # noqa: F401
from mmcvpt.peft import load_peft_checkpoint, peft_entries
from mmcvpt.models import CVPTViT


def build_model(config, checkpoint, cfg_options=None):
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    with MODELS.switch_scope_and_registry(cfg.get('default_scope')) as reg:
        model = reg.build(cfg.model)
    if not isinstance(getattr(model, 'backbone', None), CVPTViT):
        raise SystemExit(f'error: {config}: the backbone is not a CVPTViT')
    ckpt = torch.load(checkpoint, map_location='cpu', weights_only=True)
    if peft_entries(ckpt.get('state_dict', {})):
        load_peft_checkpoint(model, checkpoint)
    else:
        load_checkpoint(model, checkpoint, map_location='cpu')
    model.eval()
    return model


def input_size(model, image_shape):
    """The model's input size for an image, keeping its aspect ratio.

    The shorter side gets the model's input size (the crop or image size of
    the config), both sides are rounded to whole patches; the ViT
    interpolates its position embeddings, as in mmseg's whole-image
    inference.

    Returns:
        tuple: (height, width).
    """
    size = getattr(model.data_preprocessor, 'size', None) or \
        model.backbone.img_size
    short = min(size) if isinstance(size, (tuple, list)) else size
    stride = model.backbone.patch_embed.projection.stride
    scale = short / min(image_shape[:2])
    # At least one patch per side.
    return tuple(
        max(1, round(n * scale / s)) * s
        for n, s in zip(image_shape[:2], stride))


@torch.no_grad()
def prompt_attention(model, image_bgr, layers):
    """-> (resized image, {layer: (change (gh, gw), probs (m, gh, gw))}).

    ``change`` is ||CA(x)|| / ||x|| per patch token; ``probs`` the patch's
    attention to each prompt, mean over heads. The class token and DINOv2's
    register tokens have no place on the patch grid and are left out.
    """
    h, w = input_size(model, image_bgr.shape)
    image = cv2.resize(image_bgr, (w, h), interpolation=cv2.INTER_LINEAR)
    # Normalised without the test-time padding (Mask2Former's
    # size_divisor=32 would break the patch grid of the chosen size).
    preprocessor = model.data_preprocessor
    test_cfg, preprocessor.test_cfg = getattr(preprocessor, 'test_cfg',
                                              None), None
    try:
        data = preprocessor(
            dict(inputs=[torch.from_numpy(image).permute(2, 0, 1)]), False)
    finally:
        preprocessor.test_cfg = test_cfg
    backbone = model.backbone
    seen = {}

    def recorder(index):
        # The op's inputs are (x, prompts, qkv, proj, rope): the weights it
        # used, the block's own or the separate copy, and the rotation of the
        # queries (DINOv3 with cross_attn_rope) or None.
        def hook(op, inputs, out):
            x, prompts, qkv, _, rope = inputs
            seen[index] = (x, prompts, rope,
                           op.attention_probs(x, prompts, qkv, rope))

        return hook

    handles = [
        backbone.cross_attn_ops[i].register_forward_hook(recorder(i))
        for i in sorted(layers)
    ]
    try:
        backbone(data['inputs'])
    finally:
        for handle in handles:
            handle.remove()
    records = {}
    for index, (x, prompts, rope, probs) in seen.items():
        # The whole branch, gate and LayerScale included, as the block adds
        # it to x (the hooks are gone: this call records nothing).
        out = backbone.cross_attention(index, backbone.layers[index], x,
                                       prompts, rope)
        change = out.norm(dim=-1) / x.norm(dim=-1)
        records[index] = (change[0], probs[0].mean(0))  # (N,), (N, m)
    stride = backbone.patch_embed.projection.stride
    gh, gw = h // stride[0], w // stride[1]
    # Inside the blocks the tokens are (cls, registers, patches): skip both.
    extra = backbone.num_extra_tokens + backbone.num_register_tokens
    maps = {}
    for index, (change, probs) in records.items():
        maps[index] = (change[extra:].reshape(gh, gw),
                       probs[extra:].T.reshape(-1, gh, gw))
    return image, maps


def _panel(ax, image, values, vmin, vmax, title):
    """The image in grey under a heat map of patch values, one colour per
    patch (the maps' true resolution)."""
    h, w = image.shape[:2]
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    ax.imshow(grey, cmap='gray', extent=(0, w, h, 0))
    im = ax.imshow(
        values.float().numpy(),
        cmap='inferno',
        vmin=vmin,
        vmax=vmax,
        alpha=0.75,
        interpolation='nearest',
        extent=(0, w, h, 0))
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()
    return im


def render(image, maps, num_prompts):
    """One row per block: image | change by cross-attention | prompt 0..k-1.

    Every panel keeps the image's aspect ratio. Per row, one colour scale
    for the change and one shared by all prompt panels (up to at least 1/m,
    marked on its colour bar), both starting at 0, so that a row's prompts
    can be compared with each other.

    Returns:
        matplotlib.figure.Figure: Save it with ``fig.savefig``.
    """
    from matplotlib.figure import Figure
    h, w = image.shape[:2]
    k = min(num_prompts, min(p.shape[0] for _, p in maps.values()))
    bar_width = 0.07  # colour-bar columns, in panel widths
    ratios = [1, 1, bar_width, 0.12] + [1] * k + [bar_width]
    panel_in = 2.0
    fig = Figure(
        figsize=(panel_in * sum(ratios) + 1.2,
                 len(maps) * (panel_in * h / w + 0.55)),
        layout='constrained')
    grid = fig.add_gridspec(len(maps), len(ratios), width_ratios=ratios)
    for row, index in enumerate(sorted(maps)):
        change, probs = maps[index]
        ax = fig.add_subplot(grid[row, 0])
        ax.imshow(image[..., ::-1])
        ax.set_title(f'block {index}', fontsize=9, fontweight='bold')
        ax.set_axis_off()
        im = _panel(
            fig.add_subplot(grid[row, 1]), image, change, 0.,
            float(change.max()), 'change by cross-attention')
        bar = fig.colorbar(im, cax=fig.add_subplot(grid[row, 2]))
        bar.set_label('||CA(x)|| / ||x||', fontsize=8)
        # The scale reaches at least 1/m, the attention of a patch that
        # spreads it evenly; the line on the colour bar marks that share.
        m = probs.shape[0]
        top = max(float(probs[:k].max()), 1 / m)
        for j in range(k):
            im = _panel(
                fig.add_subplot(grid[row, 4 + j]), image, probs[j], 0., top,
                f'prompt {j}')
        bar = fig.colorbar(im, cax=fig.add_subplot(grid[row, 4 + k]))
        bar.ax.axhline(1 / m, color='white', linewidth=1.5)
        bar.set_label(f'attention to the prompt\n(line: 1/{m})', fontsize=8)
    return fig


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
    fig = render(resized, maps, args.prompts)
    fig.savefig(args.out, dpi=100)
    print(f'{args.out}: blocks {layers}, input {resized.shape[1]}x'
          f'{resized.shape[0]}')


if __name__ == '__main__':
    main()
