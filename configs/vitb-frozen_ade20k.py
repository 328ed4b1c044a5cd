# Heads only: the frozen ViT-B/16 without prompts; neck, decode and auxiliary
# heads train with the same optimiser as configs/cvpt_vitb_ade20k.py.
_base_ = ['./cvpt_vitb_ade20k.py']
model = dict(backbone=dict(num_prompts=0))
