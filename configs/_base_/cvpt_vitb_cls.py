# mmpretrain's ViT-B/16 classifier, frozen CVPTViT (configs/README.md).
_base_ = [
    'mmpretrain::_base_/models/vit-base-p16.py',
    'mmpretrain::_base_/default_runtime.py',
    './mmcvpt_runtime.py',
]
model = dict(
    backbone=dict(
        _delete_=True,
        type='CVPTViT',
        arch='b',
        img_size=224,
        patch_size=16,
        out_type='cls_token',
        drop_path_rate=0.1,
        num_prompts=10,
        prompt_dropout=0.1,
        freeze_backbone=True,
        init_cfg=dict(
            type='StrictPretrained', checkpoint='pretrain/vit-b16_in21k.pth')),
    head=dict(
        _delete_=True,
        type='LinearClsHead',
        num_classes=100,
        in_channels=768,
        loss=dict(type='CrossEntropyLoss')))
data_preprocessor = dict(
    num_classes=100,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)
pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(224, 224), interpolation='bicubic'),
    dict(type='PackInputs'),
]
# images per optimizer step over all GPUs (the reference code's, on one
# GPU); the train loop gives each process total / (GPUs x accumulation)
total_batch_size = 32
auto_scale_lr = dict(base_batch_size=total_batch_size)  # the lr's batch
train_dataloader = dict(
    batch_size='auto',  # total_batch_size / (GPUs x accumulation)
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(pipeline=pipeline))
val_dataloader = dict(
    batch_size=64,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(pipeline=pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

optim_wrapper = dict(
    type='OptimWrapper',
    # mmcvpt's registered constructor: one log line per parameter group
    constructor='PEFTOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05))
# the generated task configs' schedule, at the base lr: 10 warm-up epochs
# from lr x 1e-3, then cosine to 1e-5 (a task config replaces the list)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=True,
         begin=0, end=10, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=90, eta_min=1e-05,
         by_epoch=True, begin=10, end=100)
]
train_cfg = dict(
    type='TotalBatchEpochBasedTrainLoop', max_epochs=100, val_interval=100)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=100, max_keep_ckpts=1, save_last=True))
randomness = dict(seed=0)
