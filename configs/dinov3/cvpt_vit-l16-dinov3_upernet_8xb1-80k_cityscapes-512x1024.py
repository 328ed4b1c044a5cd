# CVPT, frozen DINOv3 ViT-L/16 + UperNet, Cityscapes (README.md here).
_base_ = ['./vpt_vit-l16-dinov3_upernet_8xb1-80k_cityscapes-512x1024.py']
model = dict(
    backbone=dict(
        type='CVPTViT',
        # no value/output biases: starts at the frozen features (README.md);
        # cross_attn_rope=True (default): patch queries rotated as DINOv3's
        cross_attn_value_bias=False))
