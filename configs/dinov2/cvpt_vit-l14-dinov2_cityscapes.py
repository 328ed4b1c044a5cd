# CVPT on a frozen DINOv2 ViT-L/14 with 4 registers + UperNet on Cityscapes:
# the recipe of configs/cityscapes/cvpt_vitb_cityscapes.py (512x1024 crops,
# 80k iterations, 8 images per iteration in total, 200 prompts per layer,
# SGD 1e-3 with neck/head lr x10, sliding-window inference) with the model of
# cvpt_vit-l14-dinov2_ade20k.py (a test checks that backbone, neck and
# heads stay equal to it, up to crop size and classes). A 512x1024 crop is
# padded to 518x1036 by the patch embedding: 37x74 patches, the pretrained
# 37x37 position embedding resized to that grid on load (bicubic).
# Trainable: prompts (24 x 200 x 1024 = 4.92M), neck, decode and auxiliary
# heads.
#
# Checkpoint: https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/
# dinov2_vitl14_reg4_pretrain.pth, converted once:
#   python tools/model_converters/vit2mmcvpt.py \
#       dinov2_vitl14_reg4_pretrain.pth pretrain/vit-l14_dinov2-reg4.pth
# VPT-deep twin: vpt_vit-l14-dinov2_cityscapes.py.
_base_ = ['../cityscapes/cvpt_vitb_cityscapes.py']
model = dict(
    backbone=dict(
        arch='l',
        patch_size=14,
        layer_scale_init_value=1e-5,
        num_register_tokens=4,
        out_indices=(5, 11, 17, 23),
        init_cfg=dict(checkpoint='pretrain/vit-l14_dinov2-reg4.pth')),
    neck=dict(in_channels=[1024] * 4, out_channels=1024),
    decode_head=dict(in_channels=[1024] * 4),
    auxiliary_head=dict(in_channels=1024))
