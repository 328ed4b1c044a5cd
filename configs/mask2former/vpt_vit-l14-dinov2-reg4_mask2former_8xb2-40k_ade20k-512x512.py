# VPT-deep twin of the cvpt_ config of this name (README.md here).
_base_ = ['./vpt_vit-b16_mask2former_8xb2-160k_ade20k-512x512.py']
model = dict(
    backbone=dict(
        arch='l',
        patch_size=14,
        layer_scale_init_value=1e-5,
        num_register_tokens=4,
        out_indices=(5, 11, 17, 23),
        # python tools/model_converters/vit2mmcvpt.py \
        #     dinov2_vitl14_reg4_pretrain.pth pretrain/vit-l14_dinov2-reg4.pth
        init_cfg=dict(checkpoint='pretrain/vit-l14_dinov2-reg4.pth')),
    neck=dict(in_channels=[1024] * 4))
# 40k iterations: the schedule frozen-DINOv2 Mask2Former recipes use
train_cfg = dict(max_iters=40000, val_interval=4000)
param_scheduler = [
    dict(type='PolyLR', eta_min=0, power=0.9, begin=0, end=40000,
         by_epoch=False)
]
default_hooks = dict(checkpoint=dict(interval=4000))
