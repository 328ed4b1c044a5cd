# VPT-deep twin of cvpt_vitb_cityscapes.py (configs/cityscapes/README.md).
_base_ = ['./cvpt_vitb_cityscapes.py']
model = dict(backbone=dict(type='VPTViT'))
