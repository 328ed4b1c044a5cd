# VPT-deep twin of cvpt_vitb_cityscapes.py: the same ViT-B/16 + UperNet,
# 200 prompts per layer, data, schedule and optimiser, with the prompts
# joining the token sequence (2048 + 200 tokens per 512x1024 crop).
_base_ = ['./cvpt_vitb_cityscapes.py']
model = dict(backbone=dict(type='VPTViT'))
