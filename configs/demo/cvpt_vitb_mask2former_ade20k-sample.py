# `make demo-m2f`: Mask2Former on the embedded ADE20K sample (README.md here).
_base_ = [
    '../mask2former/cvpt_vit-b16_mask2former_8xb2-160k_ade20k-512x512.py'
]
data_root = 'data/samples/ade20k'
crop_size = (256, 256)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(img_size=crop_size, init_cfg=None),
    neck=dict(out_channels=128),
    # mmseg's Mask2Former at half width, 20 queries, 1 pixel-decoder and 3
    # transformer-decoder layers, the point loss on a 64x64 mask's points
    decode_head=dict(
        in_channels=[128] * 4,
        feat_channels=128,
        out_channels=128,
        num_queries=20,
        pixel_decoder=dict(
            encoder=dict(
                num_layers=1,
                layer_cfg=dict(
                    self_attn_cfg=dict(embed_dims=128),
                    ffn_cfg=dict(embed_dims=128, feedforward_channels=512))),
            positional_encoding=dict(num_feats=64)),
        positional_encoding=dict(num_feats=64),
        transformer_decoder=dict(
            num_layers=3,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=128),
                cross_attn_cfg=dict(embed_dims=128),
                ffn_cfg=dict(embed_dims=128, feedforward_channels=1024))),
        train_cfg=dict(num_points=64 * 64)))
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
# The head starts from scratch and has 60 steps: a larger learning rate.
optim_wrapper = dict(optimizer=dict(lr=1e-3))
train_cfg = dict(max_iters=60, val_interval=60)
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=60,
         by_epoch=False)
]
default_hooks = dict(
    logger=dict(interval=5),
    checkpoint=dict(interval=60, max_keep_ckpts=1, save_best=None))
randomness = dict(seed=0)
