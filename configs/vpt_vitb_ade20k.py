# VPT-deep baseline: the same model, schedule, optimiser and 200 prompts per
# layer as configs/cvpt_vitb_ade20k.py (the paper compares both at P=200 on
# ADE20K), the prompts joining the token sequence instead of being
# cross-attended: (N + m)^2 attention, 1224 tokens at 512x512.
_base_ = ['./cvpt_vitb_ade20k.py']
model = dict(backbone=dict(type='VPTViT'))
