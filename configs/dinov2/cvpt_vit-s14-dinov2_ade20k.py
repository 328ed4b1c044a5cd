# CVPT on a frozen DINOv2 ViT-S/14 with 4 registers (dinov2_vits14_reg4) +
# UperNet on ADE20K: cvpt_vit-b14-dinov2_ade20k.py (the headline recipe:
# 512x512, 160k iterations, 16 images per iteration, 200 prompts per layer,
# SGD 1e-3 with neck/head lr x10) at ViT-S width: 12 layers of 384 channels
# (6 heads), the MultiLevelNeck at 384 channels in and out and the heads
# reading 384 channels. Trainable: prompts (12 x 200 x 384 = 0.92M), neck,
# decode and auxiliary heads. Why registers by default: see the B/14 config.
#
# Checkpoint: https://dl.fbaipublicfiles.com/dinov2/dinov2_vits14/
# dinov2_vits14_reg4_pretrain.pth (or timm's
# vit_small_patch14_reg4_dinov2.lvd142m), converted once:
#   python tools/model_converters/vit2mmcvpt.py \
#       dinov2_vits14_reg4_pretrain.pth pretrain/vit-s14_dinov2-reg4.pth
# VPT-deep twin: vpt_vit-s14-dinov2_ade20k.py; this config is that one with
# type='CVPTViT' and cross_attn_value_bias=False.
_base_ = ['./vpt_vit-s14-dinov2_ade20k.py']
# The cross-attention without its value/output biases (bv, bo): on a
# LayerScale backbone the paper's CA shifts every block by bv Wo + bo and
# starts far from the frozen features; without them it starts at them. On
# real DINOv2-S/14 weights and Fashion-MNIST this measured best of the CVPT
# variants (README "Evidence on real weights and real images").
model = dict(backbone=dict(type='CVPTViT', cross_attn_value_bias=False))
