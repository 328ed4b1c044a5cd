# VPT-deep twin of cvpt_vitl_setr-pup_ade20k.py (configs/README.md).
_base_ = ['./cvpt_vitl_setr-pup_ade20k.py']
model = dict(backbone=dict(type='VPTViT'))
