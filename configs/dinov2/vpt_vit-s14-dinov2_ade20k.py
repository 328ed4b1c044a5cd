# VPT-deep twin of cvpt_vit-s14-dinov2_ade20k.py (README.md here).
_base_ = ['./vpt_vit-b14-dinov2_ade20k.py']
model = dict(
    backbone=dict(
        arch='dinov2-s',
        init_cfg=dict(checkpoint='pretrain/vit-s14_dinov2-reg4.pth')),
    neck=dict(in_channels=[384] * 4, out_channels=384),
    decode_head=dict(in_channels=[384] * 4),
    auxiliary_head=dict(in_channels=384))
