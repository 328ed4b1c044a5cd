# VTAB-1K: train800val200 -> test at the end (configs/vtab1k/README.md).
_base_ = ['./cvpt_vitb_cls.py']
train_dataloader = dict(
    dataset=dict(
        type='VTAB1k', data_root='data/vtab-1k', split='train800val200'))
val_dataloader = dict(
    dataset=dict(type='VTAB1k', data_root='data/vtab-1k', split='test'))
test_dataloader = val_dataloader
