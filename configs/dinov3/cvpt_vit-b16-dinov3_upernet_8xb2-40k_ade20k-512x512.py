# CVPT, frozen DINOv3 ViT-B/16 + UperNet, ADE20K (README.md here).
_base_ = ['./vpt_vit-b16-dinov3_upernet_8xb2-40k_ade20k-512x512.py']
model = dict(
    backbone=dict(
        type='CVPTViT',
        # no value/output biases: starts at the frozen features (README.md);
        # cross_attn_rope=True (default): patch queries rotated as DINOv3's
        cross_attn_value_bias=False))
