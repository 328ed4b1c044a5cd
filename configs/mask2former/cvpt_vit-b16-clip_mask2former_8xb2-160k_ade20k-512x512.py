# CVPT, frozen OpenAI CLIP ViT-B/16 + Mask2Former, ADE20K (README.md here).
_base_ = ['./vpt_vit-b16-clip_mask2former_8xb2-160k_ade20k-512x512.py']
model = dict(
    backbone=dict(
        type='CVPTViT',
        # no value/output biases: starts at the frozen features (README.md)
        cross_attn_value_bias=False))
