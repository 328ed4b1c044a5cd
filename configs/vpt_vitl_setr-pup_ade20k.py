# VPT-deep twin of the paper's setting (cvpt_vitl_setr-pup_ade20k.py): the
# same ViT-L/16 + SETR-PUP, 200 prompts per layer, optimiser and schedule,
# with the prompts joining the token sequence instead of being
# cross-attended. The CVPT config sets no CVPT-only backbone argument
# (prompt_position, cross_attn_weights, ...), so the type alone changes.
_base_ = ['./cvpt_vitl_setr-pup_ade20k.py']
model = dict(backbone=dict(type='VPTViT'))
