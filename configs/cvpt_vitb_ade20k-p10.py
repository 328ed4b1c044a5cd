# configs/cvpt_vitb_ade20k.py with 10 prompts per layer (configs/README.md).
_base_ = ['./cvpt_vitb_ade20k.py']
model = dict(backbone=dict(num_prompts=10))
