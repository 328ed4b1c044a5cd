# VPT-deep twin of cvpt_vitb_pascal-context-59.py (README.md here).
_base_ = ['./cvpt_vitb_pascal-context-59.py']
model = dict(backbone=dict(type='VPTViT'))
