# VPT-deep twin of the cvpt_ config of this name (README.md here).
_base_ = [
    'mmseg::mask2former/mask2former_r50_8xb2-90k_cityscapes-512x1024.py',
    '../_base_/models/vpt_vit-l14-dinov2-reg4_512x1024.py',
    '../_base_/mmcvpt_hooks.py',
]
# the model, optimiser and batch of the ADE20K config (a test checks they
# stay equal to it, up to crop size and classes)
custom_imports = dict(
    imports=['mmcvpt', 'mmcvpt.utils.require_mmdet', 'mmdet.models'],
    allow_failed_imports=False)
crop_size = (512, 1024)
model = dict(
    backbone={{_base_.vit_backbone}},
    # one ViT stride -> strides 4/8/16/32 (mmseg's MultiLevelNeck, as the
    # UperNet configs) at the pixel decoder's 256 channels (README.md)
    neck=dict(
        type='MultiLevelNeck',
        in_channels=[1024] * 4,
        out_channels=256,
        scales=[4, 2, 1, 0.5]),
    decode_head=dict(in_channels=[256] * 4),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 682)))
optim_wrapper = dict(
    constructor='PEFTOptimWrapperConstructor',
    paramwise_cfg=dict(
        custom_keys={'backbone.prompts': dict(lr_mult=10.0, decay_mult=0.0)}))
train_cfg = dict(
    type='TotalBatchIterBasedTrainLoop', max_iters=40000, val_interval=4000)
param_scheduler = [
    dict(type='PolyLR', eta_min=0, power=0.9, begin=0, end=40000,
         by_epoch=False)
]
default_hooks = dict(checkpoint=dict(interval=4000))
total_batch_size = 16
auto_scale_lr = dict(base_batch_size=total_batch_size)
train_dataloader = dict(batch_size='auto')
