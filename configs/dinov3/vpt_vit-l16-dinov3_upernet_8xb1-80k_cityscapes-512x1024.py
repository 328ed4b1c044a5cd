# VPT-deep twin of the cvpt_ config of this name (README.md here).
_base_ = [
    '../dinov2/vpt_vit-l14-dinov2_cityscapes.py',
    '../_base_/models/dinov3_vit-16.py',
]
model = dict(backbone={{_base_.dinov3_l16}})
