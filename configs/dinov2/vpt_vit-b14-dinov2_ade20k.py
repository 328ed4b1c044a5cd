# VPT-deep twin of cvpt_vit-b14-dinov2_ade20k.py: the same DINOv2 ViT-B/14
# (4 registers) + UperNet, 200 prompts per layer, data, schedule and
# optimiser; the prompts join the token sequence (1 + 4 + 1369 + 200 tokens
# per 512x512 crop).
# The model and recipe lines live here; cvpt_vit-b14-dinov2_ade20k.py
# is this config with the CVPT backbone type and its options.
_base_ = ['../vpt_vitb_ade20k.py']
model = dict(
    backbone=dict(
        patch_size=14,
        layer_scale_init_value=1e-5,
        num_register_tokens=4,
        init_cfg=dict(checkpoint='pretrain/vit-b14_dinov2-reg4.pth')))
