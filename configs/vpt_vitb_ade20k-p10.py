# configs/vpt_vitb_ade20k.py (VPT-deep) with 10 prompts per layer: VPT, unlike
# CVPT, does better with few prompts (the paper's VTAB-1K ablation: from 73.0
# with fewer prompts to 64.0 at 200), so this is its stronger setting.
_base_ = ['./vpt_vitb_ade20k.py']
model = dict(backbone=dict(num_prompts=10))
