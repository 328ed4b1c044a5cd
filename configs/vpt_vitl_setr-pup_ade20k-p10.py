# vpt_vitl_setr-pup_ade20k.py (VPT-deep twin) with 10 prompts per layer.
_base_ = ['./vpt_vitl_setr-pup_ade20k.py']
model = dict(backbone=dict(num_prompts=10))
