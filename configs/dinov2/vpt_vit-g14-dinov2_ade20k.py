# VPT-deep twin of cvpt_vit-g14-dinov2_ade20k.py: the same DINOv2 ViT-g/14
# (4 registers) + UperNet, 200 prompts per layer, data, schedule and
# optimiser; the prompts join the token sequence.
_base_ = ['./cvpt_vit-g14-dinov2_ade20k.py']
model = dict(backbone=dict(type='VPTViT'))
