# Classification with CVPT: mmpretrain's ViT-B/16 classifier with a CVPTViT
# backbone (ImageNet-21k, frozen) and a linear head; the reference code's
# protocol: AdamW, 100 epochs, 10 warm-up epochs (from lr 1e-6), cosine to
# 1e-5, drop-path 0.1, prompt dropout 0.1, 224x224 bicubic, ImageNet mean/std,
# no augmentation. Per-task lr / prompts / wd / batch: the generated configs
# in configs/vtab1k and configs/fgvc (tools/vtab/gen_configs.py).
# The test split is evaluated once, at the END of training (val_interval =
# max_epochs, no best-checkpoint selection): no test-set peeking.
# Batch: `total_batch_size` images per step over all GPUs (the reference
# code's, on one GPU); tools/train.py sets train_dataloader.batch_size to
# total_batch_size / GPUs, so the lr and the steps per epoch do not change
# with the GPU count (mmcvpt/launch/batch.py).
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
total_batch_size = 32
train_dataloader = dict(
    batch_size=32,  # per GPU: 1 GPU
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
    # mmengine's default constructor, one log line per parameter group
    constructor='PEFTOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05))
train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=100)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=100, max_keep_ckpts=1, save_last=True))
randomness = dict(seed=0)
