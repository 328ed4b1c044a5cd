# CVPT ViT-B/16 (IN-21k, frozen) + UperNet, ADE20K (configs/cvpt/README.md).
_base_ = [
    '../_base_/models/upernet_cvpt_vit-b16.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py',
    '../_base_/mmcvpt_runtime.py',
]
crop_size = (512, 512)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(num_prompts=200),
    decode_head=dict(num_classes=150),
    auxiliary_head=dict(num_classes=150))

optim_wrapper = dict(
    type='OptimWrapper',
    # mmcvpt's registered constructor: one log line per parameter group
    constructor='PEFTOptimWrapperConstructor',
    optimizer=dict(type='SGD', lr=1e-3, momentum=0.9, weight_decay=0.0),
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
        end=160000,
        by_epoch=False)
]

# 16 images per optimizer step in total, as the paper, under any launcher
# and GPU count: the train loop sets batch_size = total_batch_size / (GPUs x
# optim_wrapper.accumulative_counts), 2 per GPU on 8 GPUs. A single 24 GB
# GPU keeps the 16 as 2 x 8 accumulated: --cfg-options
# optim_wrapper.accumulative_counts=8 (iterations then count batches: 8x
# train_cfg.max_iters and PolyLR's end give the paper's 160k steps).
total_batch_size = 16
auto_scale_lr = dict(base_batch_size=total_batch_size)  # the lr's batch
train_dataloader = dict(batch_size='auto')
train_cfg = dict(type='TotalBatchIterBasedTrainLoop')
val_dataloader = dict(batch_size=1)
test_dataloader = val_dataloader
