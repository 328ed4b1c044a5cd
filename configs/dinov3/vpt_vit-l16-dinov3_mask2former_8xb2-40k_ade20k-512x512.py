# VPT-deep twin of the cvpt_ config of this name (README.md here).
_base_ = [
    '../mask2former/vpt_vit-l14-dinov2-reg4_mask2former_8xb2-40k_ade20k-'
    '512x512.py',
    '../_base_/models/dinov3_vit-16.py',
]
model = dict(backbone={{_base_.dinov3_l16}})
