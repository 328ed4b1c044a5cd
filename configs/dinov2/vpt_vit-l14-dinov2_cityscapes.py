# VPT-deep twin of cvpt_vit-l14-dinov2_cityscapes.py: the same DINOv2
# ViT-L/14 (4 registers) + UperNet, 200 prompts per layer, data, schedule and
# optimiser; the prompts join the token sequence.
_base_ = ['./cvpt_vit-l14-dinov2_cityscapes.py']
model = dict(backbone=dict(type='VPTViT'))
