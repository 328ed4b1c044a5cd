# VPT-deep twin of cvpt_vit-b16-clip_ade20k.py: the same CLIP ViT-B/16 +
# UperNet, 200 prompts per layer, data, schedule and optimiser; the prompts
# join the token sequence.
_base_ = ['./cvpt_vit-b16-clip_ade20k.py']
model = dict(backbone=dict(type='VPTViT'))
