# CVPT on a frozen DINOv2 ViT-L/14 with 4 registers (dinov2_vitl14_reg4) +
# UperNet on ADE20K: cvpt_vit-b14-dinov2_ade20k.py (the headline recipe:
# 512x512, 160k iterations, 16 images per iteration, 200 prompts per layer,
# SGD 1e-3 with neck/head lr x10) at ViT-L width: 24 layers of 1024
# channels, features from layers 6, 12, 18, 24 (out_indices 5, 11, 17, 23),
# the MultiLevelNeck at 1024 channels in and out and the heads reading 1024
# channels. Trainable: prompts (24 x 200 x 1024 = 4.92M), neck, decode and
# auxiliary heads. Why registers by default: see the B/14 config.
#
# Checkpoint: https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/
# dinov2_vitl14_reg4_pretrain.pth (or timm's
# vit_large_patch14_reg4_dinov2.lvd142m), converted once:
#   python tools/model_converters/vit2mmcvpt.py \
#       dinov2_vitl14_reg4_pretrain.pth pretrain/vit-l14_dinov2-reg4.pth
# VPT-deep twin: vpt_vit-l14-dinov2_ade20k.py; this config is that one with
# type='CVPTViT' and cross_attn_value_bias=False. The same model on Cityscapes:
# cvpt_vit-l14-dinov2_cityscapes.py.
_base_ = ['./vpt_vit-l14-dinov2_ade20k.py']
# The cross-attention without its value/output biases (bv, bo): on a
# LayerScale backbone the paper's CA shifts every block by bv Wo + bo and
# starts far from the frozen features; without them it starts at them. On
# real DINOv2-S/14 weights and Fashion-MNIST this measured best of the CVPT
# variants (README "Evidence on real weights and real images").
model = dict(backbone=dict(type='CVPTViT', cross_attn_value_bias=False))
