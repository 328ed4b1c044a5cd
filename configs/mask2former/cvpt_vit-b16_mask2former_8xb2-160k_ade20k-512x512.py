# CVPT ViT-B/16 (IN-21k, frozen) + Mask2Former, ADE20K (README.md here).
_base_ = [
    'mmseg::mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py',
    '../_base_/models/cvpt_vit-b16.py',
    '../_base_/mmcvpt_hooks.py',
]
# mmcvpt's mmdet check first: one line naming the install without mmdet
custom_imports = dict(
    imports=['mmcvpt', 'mmcvpt.utils.require_mmdet', 'mmdet.models'],
    allow_failed_imports=False)
model = dict(
    backbone={{_base_.vit_backbone}},
    # one ViT stride -> strides 4/8/16/32 (mmseg's MultiLevelNeck, as the
    # UperNet configs) at the pixel decoder's 256 channels (README.md)
    neck=dict(
        type='MultiLevelNeck',
        in_channels=[768] * 4,
        out_channels=256,
        scales=[4, 2, 1, 0.5]),
    decode_head=dict(in_channels=[256] * 4))

# mmseg's Mask2Former AdamW recipe (lr 1e-4, clip 0.01, poly) for the head;
# the prompts at CVPT's AdamW rate 1e-3 without weight decay (README.md)
optim_wrapper = dict(
    # mmcvpt's registered constructor: one log line per parameter group
    constructor='PEFTOptimWrapperConstructor',
    paramwise_cfg=dict(
        custom_keys={'backbone.prompts': dict(lr_mult=10.0, decay_mult=0.0)}))

# 16 images per optimizer step in total under any launcher (configs/cvpt/
# README.md): 2 per GPU on 8 GPUs, as mmseg's Mask2Former configs.
total_batch_size = 16
auto_scale_lr = dict(base_batch_size=total_batch_size)  # the lr's batch
train_dataloader = dict(batch_size='auto')
train_cfg = dict(type='TotalBatchIterBasedTrainLoop')
