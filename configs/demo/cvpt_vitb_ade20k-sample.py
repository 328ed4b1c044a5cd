# `make demo`: the headline on the embedded ADE20K sample (README.md here).
_base_ = ['../cvpt_vitb_ade20k.py']
data_root = 'data/samples/ade20k'
crop_size = (256, 256)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(img_size=crop_size, init_cfg=None),
    neck=dict(out_channels=256),
    decode_head=dict(in_channels=[256] * 4, channels=128),
    auxiliary_head=dict(in_channels=256, channels=64))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(
        type='RandomResize',
        scale=(512, 256),
        ratio_range=(0.8, 1.2),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(512, 256), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')
]
total_batch_size = 2  # 1 process x 2 (batch_size 'auto': the loop splits)
auto_scale_lr = dict(base_batch_size=total_batch_size)
train_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
# Heads start from scratch and have 40 steps: a larger learning rate.
optim_wrapper = dict(optimizer=dict(lr=0.01))
train_cfg = dict(max_iters=40, val_interval=40)
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=40,
         by_epoch=False)
]
default_hooks = dict(
    logger=dict(interval=5),
    checkpoint=dict(interval=40, max_keep_ckpts=1))
randomness = dict(seed=0)
