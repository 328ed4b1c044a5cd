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
# VPT-deep twin: vpt_vit-l14-dinov2_cityscapes.py; this config is that one with
# type='CVPTViT' and cross_attn_value_bias=False.
_base_ = ['./vpt_vit-l14-dinov2_cityscapes.py']
# The cross-attention without its value/output biases (bv, bo): on a
# LayerScale backbone the paper's CA shifts every block by bv Wo + bo and
# starts far from the frozen features; without them it starts at them. On
# real DINOv2-S/14 weights and Fashion-MNIST this measured best of the CVPT
# variants (README "Evidence on real weights and real images").
model = dict(backbone=dict(type='CVPTViT', cross_attn_value_bias=False))
