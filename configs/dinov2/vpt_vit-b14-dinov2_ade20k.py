# VPT-deep twin of cvpt_vit-b14-dinov2_ade20k.py: the same DINOv2 ViT-B/14
# (4 registers) + UperNet, 200 prompts per layer, data, schedule and
# optimiser; the prompts join the token sequence (1 + 4 + 1369 + 200 tokens
# per 512x512 crop).
_base_ = ['./cvpt_vit-b14-dinov2_ade20k.py']
model = dict(backbone=dict(type='VPTViT'))
