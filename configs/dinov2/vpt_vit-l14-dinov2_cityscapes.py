# VPT-deep twin of cvpt_vit-l14-dinov2_cityscapes.py (README.md here).
_base_ = ['../cityscapes/vpt_vitb_cityscapes.py']
model = dict(
    backbone=dict(
        arch='l',
        patch_size=14,
        layer_scale_init_value=1e-5,
        num_register_tokens=4,
        out_indices=(5, 11, 17, 23),
        init_cfg=dict(checkpoint='pretrain/vit-l14_dinov2-reg4.pth')),
    neck=dict(in_channels=[1024] * 4, out_channels=1024),
    decode_head=dict(in_channels=[1024] * 4),
    auxiliary_head=dict(in_channels=1024))
