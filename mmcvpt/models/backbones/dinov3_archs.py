"""DINOv3's released ViTs as mmpretrain arch settings.

DINOv3 <https://arxiv.org/abs/2508.10104>, Meta's hub configs. Beside
mmpretrain's four keys each entry may name the FFN type ('swiglu_fused' for
S+/H+/7B: mmpretrain's hidden width (int(f * 2 / 3) + 7) // 8 * 8 is 1536 /
5120 / 8192, Meta's SwiGLU widths) and the qkv bias (none in the 7B), which
become defaults of ``layer_cfgs`` and ``qkv_bias``.
"""

DINOV3_ARCHS = {
    'dinov3-s': dict(embed_dims=384, num_layers=12, num_heads=6,
                     feedforward_channels=1536),
    'dinov3-s+': dict(embed_dims=384, num_layers=12, num_heads=6,
                      feedforward_channels=2304, ffn_type='swiglu_fused'),
    'dinov3-b': dict(embed_dims=768, num_layers=12, num_heads=12,
                     feedforward_channels=3072),
    'dinov3-l': dict(embed_dims=1024, num_layers=24, num_heads=16,
                     feedforward_channels=4096),
    'dinov3-h+': dict(embed_dims=1280, num_layers=32, num_heads=20,
                      feedforward_channels=7680, ffn_type='swiglu_fused'),
    'dinov3-7b': dict(embed_dims=4096, num_layers=40, num_heads=32,
                      feedforward_channels=12288, ffn_type='swiglu_fused',
                      qkv_bias=False),
}


def apply_arch_defaults(arch_settings: dict, kwargs: dict) -> None:
    """An arch's FFN type and qkv bias into ``kwargs`` (VisionTransformer's
    arguments), unless they set them."""
    if 'qkv_bias' in arch_settings:
        kwargs.setdefault('qkv_bias', arch_settings['qkv_bias'])
    ffn_type = arch_settings.get('ffn_type')
    if ffn_type is None:
        return
    cfgs = kwargs.get('layer_cfgs', {})
    if isinstance(cfgs, dict):
        kwargs['layer_cfgs'] = dict(dict(ffn_type=ffn_type), **cfgs)
    else:
        kwargs['layer_cfgs'] = [
            dict(dict(ffn_type=ffn_type), **c) for c in cfgs
        ]
