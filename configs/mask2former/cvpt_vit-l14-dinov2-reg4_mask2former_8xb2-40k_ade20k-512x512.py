# CVPT, frozen DINOv2 ViT-L/14 reg4 + Mask2Former, ADE20K (README.md here).
_base_ = ['./vpt_vit-l14-dinov2-reg4_mask2former_8xb2-40k_ade20k-512x512.py']
model = dict(
    backbone=dict(
        type='CVPTViT',
        # no value/output biases: starts at the frozen features (README.md)
        cross_attn_value_bias=False))
