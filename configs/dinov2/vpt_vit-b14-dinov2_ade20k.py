# VPT-deep twin of cvpt_vit-b14-dinov2_ade20k.py (README.md here).
_base_ = ['../vpt_vitb_ade20k.py']
model = dict(
    backbone=dict(
        patch_size=14,
        layer_scale_init_value=1e-5,
        num_register_tokens=4,
        init_cfg=dict(checkpoint='pretrain/vit-b14_dinov2-reg4.pth')))
