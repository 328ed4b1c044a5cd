# Heads only: frozen ViT-B/16, no prompts, + UperNet (configs/README.md).
_base_ = ['./cvpt_vitb_ade20k.py']
model = dict(backbone=dict(num_prompts=0))
