# CVPT, frozen DINOv2 ViT-L/14 reg4 + Mask2Former, Cityscapes (README.md).
_base_ = [
    './vpt_vit-l14-dinov2-reg4_mask2former_8xb2-40k_cityscapes-512x1024.py'
]
model = dict(
    backbone=dict(
        type='CVPTViT',
        # no value/output biases: starts at the frozen features (README.md)
        cross_attn_value_bias=False))
