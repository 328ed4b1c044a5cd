# DINOv3 ViT-B/16, L/16 backbone variables (configs/dinov3/README.md).
dinov3_b16 = dict(
    # merged into a base's backbone: backbone={{_base_.dinov3_b16}}
    arch='dinov3-b',
    patch_size=16,
    layer_scale_init_value=1e-5,  # the pretrained gammas load over it
    num_register_tokens=4,  # DINOv3's storage tokens
    rope=dict(base=100.),  # rotary positions: no pos_embed, any input size
    norm_cfg=dict(type='LN', eps=1e-5),
    out_indices=(2, 5, 8, 11),
    # python tools/model_converters/vit2mmcvpt.py \
    #     dinov3_vitb16_pretrain_lvd1689m-*.pth pretrain/vit-b16_dinov3.pth
    init_cfg=dict(checkpoint='pretrain/vit-b16_dinov3.pth'))
dinov3_l16 = dict(
    dinov3_b16,
    arch='dinov3-l',
    out_indices=(5, 11, 17, 23),
    # python tools/model_converters/vit2mmcvpt.py \
    #     dinov3_vitl16_pretrain_lvd1689m-*.pth pretrain/vit-l16_dinov3.pth
    init_cfg=dict(checkpoint='pretrain/vit-l16_dinov3.pth'))
