# VPT-deep twin of configs/cvpt_vitb_ade20k.py (configs/README.md).
_base_ = ['./cvpt_vitb_ade20k.py']
model = dict(backbone=dict(type='VPTViT'))
