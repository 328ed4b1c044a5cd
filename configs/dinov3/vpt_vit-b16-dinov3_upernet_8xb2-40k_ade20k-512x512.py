# VPT-deep twin of the cvpt_ config of this name (README.md here).
_base_ = ['../vpt_vitb_ade20k.py', '../_base_/models/dinov3_vit-16.py']
model = dict(backbone={{_base_.dinov3_b16}})
# 40k iterations: DINOv3's frozen-backbone segmentation schedule
train_cfg = dict(max_iters=40000, val_interval=4000)
param_scheduler = [
    dict(type='PolyLR', eta_min=0, power=0.9, begin=0, end=40000,
         by_epoch=False)
]
default_hooks = dict(checkpoint=dict(interval=4000))
