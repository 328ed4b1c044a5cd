"""A tiny-width variant of the demo config that trains in seconds on a CPU
(ViT C=64, 4 layers, 4 prompts, 64x64 crops), on a folder in the ADE20K
layout (``tools/misc/make_samples.py ade20k``).

Used by tools/misc/repeat_dist_train.py and by the tool tests
(tests/seg_fixtures.py).
"""
import os.path as osp

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO_CONFIG = osp.join(REPO, 'configs/demo/cvpt_vitb_ade20k-sample.py')

TINY_OVERRIDES = '''
crop_size = (64, 64)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=64, num_layers=4, num_heads=4,
                  feedforward_channels=128),
        img_size=crop_size, out_indices=(0, 1, 2, 3), num_prompts=4),
    neck=dict(in_channels=[64] * 4, out_channels=32),
    decode_head=dict(in_channels=[32] * 4, channels=16),
    auxiliary_head=dict(in_channels=32, channels=8))
train_dataloader = dict(batch_size=2, dataset=dict(
    data_root=data_root, pipeline=[
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(128, 64), ratio_range=(0.8, 1.2),
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')]))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 64), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')]
val_dataloader = dict(
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
default_hooks = dict(logger=dict(interval=1))
# 2 images per process (plain mmengine) in the 1- and the 2-process tests:
# the demo's total of 2 would leave 1 per process on 2, and BN (SyncBN
# becomes BN on CPU) cannot train UPerHead's 1x1 pooling branch on 1 image.
total_batch_size = None
'''


def write_tiny_config(path, data_root, iters=2, extra=''):
    """Write the tiny config for ``data_root`` to ``path``, ``iters``
    iterations with one validation at the end, plus ``extra`` config
    lines; returns ``path``."""
    with open(path, 'w') as f:
        f.write(f"_base_ = ['{DEMO_CONFIG}']\n"
                f"data_root = '{data_root}'\n" + TINY_OVERRIDES +
                f"train_cfg = dict(max_iters={iters}, val_interval={iters})\n"
                f"param_scheduler = []\n" + extra)
    return path
