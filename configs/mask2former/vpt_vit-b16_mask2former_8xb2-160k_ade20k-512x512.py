# VPT-deep twin of the cvpt_ config of this name (README.md here).
_base_ = ['./cvpt_vit-b16_mask2former_8xb2-160k_ade20k-512x512.py']
model = dict(backbone=dict(type='VPTViT'))
