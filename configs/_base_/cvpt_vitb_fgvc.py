# FGVC: train+val -> test at the end of training (configs/fgvc/README.md).
_base_ = ['./cvpt_vitb_cls.py']
train_dataloader = dict(dataset=dict(type='FGVC', split='trainval'))
val_dataloader = dict(dataset=dict(type='FGVC', split='test'))
test_dataloader = val_dataloader
