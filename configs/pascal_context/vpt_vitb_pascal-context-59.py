# VPT-deep twin of cvpt_vitb_pascal-context-59.py: the same ViT-B/16 +
# UperNet, 200 prompts per layer, data, schedule and optimiser, with the
# prompts joining the token sequence (900 + 200 tokens per 480x480 crop).
_base_ = ['./cvpt_vitb_pascal-context-59.py']
model = dict(backbone=dict(type='VPTViT'))
