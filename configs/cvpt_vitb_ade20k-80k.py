# configs/cvpt_vitb_ade20k.py with half the schedule: 80k iterations.
_base_ = ['./cvpt_vitb_ade20k.py']
train_cfg = dict(max_iters=80000, val_interval=8000)
param_scheduler = [
    dict(
        type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=80000,
        by_epoch=False)
]
default_hooks = dict(checkpoint=dict(interval=8000))
