# CVPT ViT-B/16 (IN-21k) + UperNet, Cityscapes (configs/cityscapes/README.md).
_base_ = [
    '../_base_/models/upernet_cvpt_vit-b16.py',
    'mmseg::_base_/datasets/cityscapes.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_80k.py',
    '../_base_/mmcvpt_runtime.py',
]
crop_size = (512, 1024)
model = dict(
    data_preprocessor=dict(size=crop_size),
    # the base's weights, converted once with
    # python tools/model_converters/vit2mmcvpt.py ViT-B_16.npz \
    #     pretrain/vit-b16_in21k.pth
    backbone=dict(img_size=crop_size, num_prompts=200),
    decode_head=dict(num_classes=19),
    auxiliary_head=dict(num_classes=19),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 682)))

optim_wrapper = dict(
    optimizer=dict(lr=1e-3, weight_decay=0.0),
    paramwise_cfg=dict(
        custom_keys={
            'neck': dict(lr_mult=10.),
            'head': dict(lr_mult=10.),  # decode_head + auxiliary_head
        }))
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=0.9,
        begin=0,
        end=80000,
        by_epoch=False)
]

# 8 images per optimizer step in total, split by the train loop over the
# GPUs x accumulation (2 per GPU on 4 GPUs, as mmseg's dataset file).
total_batch_size = 8
auto_scale_lr = dict(base_batch_size=total_batch_size)  # the lr's batch
train_dataloader = dict(batch_size='auto')
train_cfg = dict(type='TotalBatchIterBasedTrainLoop')
