# FGVC (VPT's json splits under data/fgvc/<dataset>/): the final run trains on
# train+val and reports test accuracy at the end of training. For selection,
# run train -> val (tools/vtab/run_all.sh --val).
_base_ = ['./cvpt_vitb_cls.py']
train_dataloader = dict(dataset=dict(type='FGVC', split='trainval'))
val_dataloader = dict(dataset=dict(type='FGVC', split='test'))
test_dataloader = val_dataloader
