# vit_backbone as VPT-deep DINOv2 ViT-L/14 reg4, 512x1024 (configs/README.md).
_base_ = ['./cvpt_vit-b16.py']
vit_backbone = dict(
    type='VPTViT',
    arch='l',
    img_size=(512, 1024),
    patch_size=14,
    layer_scale_init_value=1e-5,
    num_register_tokens=4,
    out_indices=(5, 11, 17, 23),
    # python tools/model_converters/vit2mmcvpt.py \
    #     dinov2_vitl14_reg4_pretrain.pth pretrain/vit-l14_dinov2-reg4.pth
    init_cfg=dict(checkpoint='pretrain/vit-l14_dinov2-reg4.pth'))
