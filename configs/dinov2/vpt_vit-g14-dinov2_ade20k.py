# VPT-deep twin of cvpt_vit-g14-dinov2_ade20k.py (README.md here).
_base_ = ['./vpt_vit-b14-dinov2_ade20k.py']
model = dict(
    backbone=dict(
        arch='dinov2-g',
        layer_cfgs=dict(ffn_type='swiglu_fused'),
        out_indices=(9, 19, 29, 39),
        init_cfg=dict(checkpoint='pretrain/vit-g14_dinov2-reg4.pth')),
    neck=dict(in_channels=[1536] * 4, out_channels=1536),
    decode_head=dict(in_channels=[1536] * 4),
    auxiliary_head=dict(in_channels=1536))
