# Full fine-tuning of ViT-B/16 + UperNet, mmseg's recipe (configs/README.md).
_base_ = ['./cvpt_vitb_ade20k.py']
model = dict(
    backbone=dict(num_prompts=0, freeze_backbone=False, drop_path_rate=0.1))
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    # mmcvpt's registered constructor: one log line per parameter group
    constructor='PEFTOptimWrapperConstructor',
    optimizer=dict(
        type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(
        custom_keys={
            'pos_embed': dict(decay_mult=0.),
            'cls_token': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.),
            'ln': dict(decay_mult=0.),
        }))
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
        end=1500),
    dict(
        type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=160000,
        by_epoch=False)
]
