# VPT-deep twin of the cvpt_ config of this name (README.md here).
_base_ = ['./vpt_vit-b16-dinov3_upernet_8xb2-40k_ade20k-512x512.py']
model = dict(
    backbone={{_base_.dinov3_l16}},
    neck=dict(in_channels=[1024] * 4, out_channels=1024),
    decode_head=dict(in_channels=[1024] * 4),
    auxiliary_head=dict(in_channels=1024))
