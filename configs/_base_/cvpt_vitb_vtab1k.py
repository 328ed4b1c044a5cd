# VTAB-1K (NOAH filelists under data/vtab-1k/<task>/): the final run trains on
# train800val200 and reports test accuracy at the end of training. For lr /
# prompt selection, run with train800 -> val200 (tools/vtab/run_all.sh --val).
_base_ = ['./cvpt_vitb_cls.py']
train_dataloader = dict(
    dataset=dict(
        type='VTAB1k', data_root='data/vtab-1k', split='train800val200'))
val_dataloader = dict(
    dataset=dict(type='VTAB1k', data_root='data/vtab-1k', split='test'))
test_dataloader = val_dataloader
