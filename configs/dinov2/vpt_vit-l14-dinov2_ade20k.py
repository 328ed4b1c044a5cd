# VPT-deep twin of cvpt_vit-l14-dinov2_ade20k.py (README.md here).
_base_ = ['./vpt_vit-b14-dinov2_ade20k.py']
model = dict(
    backbone=dict(
        arch='l',
        out_indices=(5, 11, 17, 23),
        init_cfg=dict(checkpoint='pretrain/vit-l14_dinov2-reg4.pth')),
    neck=dict(in_channels=[1024] * 4, out_channels=1024),
    decode_head=dict(in_channels=[1024] * 4),
    auxiliary_head=dict(in_channels=1024))
