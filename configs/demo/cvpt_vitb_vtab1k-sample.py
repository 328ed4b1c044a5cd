# `make demo-cls`: VTAB-1K eurosat on the embedded sample (README.md here).
_base_ = ['../vtab1k/cvpt_vitb_vtab1k-eurosat.py']
data_root = 'data/samples/vtab1k'
model = dict(backbone=dict(init_cfg=None))
total_batch_size = 8  # 1 process x 8 (batch_size 'auto': the loop splits)
auto_scale_lr = dict(base_batch_size=total_batch_size)
train_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root))
val_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=10, val_interval=10)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=2,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=8, eta_min=1e-5, by_epoch=True,
         begin=2, end=10)
]
default_hooks = dict(logger=dict(interval=3), checkpoint=dict(interval=10))
