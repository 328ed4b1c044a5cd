# VPT-deep baseline: the same model, schedule and optimiser as
# configs/cvpt_vitb_ade20k.py, with the 10 prompts per layer joining the
# token sequence instead of being cross-attended.
_base_ = ['./cvpt_vitb_ade20k.py']
model = dict(backbone=dict(type='VPTViT'))
