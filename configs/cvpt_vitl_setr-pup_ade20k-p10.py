# cvpt_vitl_setr-pup_ade20k.py with 10 prompts per layer, the value in the
# authors' released segmentation config (their paper's table uses 200).
_base_ = ['./cvpt_vitl_setr-pup_ade20k.py']
model = dict(backbone=dict(num_prompts=10))
