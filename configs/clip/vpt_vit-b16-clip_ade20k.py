# VPT-deep twin of cvpt_vit-b16-clip_ade20k.py (README.md here).
_base_ = ['../vpt_vitb_ade20k.py']
model = dict(
    data_preprocessor=dict(
        mean=[122.7709383, 116.7460125, 104.09373615],
        std=[68.5005327, 66.6321579, 70.32316305]),
    backbone=dict(
        pre_norm=True,
        norm_cfg=dict(type='LN', eps=1e-5),
        layer_cfgs=dict(act_cfg=dict(type='mmpretrain.QuickGELU')),
        init_cfg=dict(checkpoint='pretrain/vit-b16_clip-openai.pth')))
