# CVPT on a frozen DINOv2 ViT-g/14 with 4 registers (dinov2_vitg14_reg4) +
# UperNet on ADE20K: cvpt_vit-b14-dinov2_ade20k.py (the headline recipe:
# 512x512, 160k iterations, 16 images per iteration, 200 prompts per layer,
# SGD 1e-3 with neck/head lr x10) at ViT-g width: 40 layers of 1536 channels
# (24 heads) with DINOv2-g's fused SwiGLU FFN, features from layers 10, 20,
# 30, 40 (out_indices 9, 19, 29, 39), the MultiLevelNeck at 1536 channels in
# and out and the heads reading 1536 channels. Trainable: prompts
# (40 x 200 x 1536 = 12.29M), neck, decode and auxiliary heads. The frozen
# backbone has 1.1B parameters: budget GPU memory accordingly (with_cp=True
# on the backbone trades compute for activation memory).
# Why registers by default: see the B/14 config.
#
# Checkpoint: https://dl.fbaipublicfiles.com/dinov2/dinov2_vitg14/
# dinov2_vitg14_reg4_pretrain.pth (or timm's
# vit_giant_patch14_reg4_dinov2.lvd142m), converted once:
#   python tools/model_converters/vit2mmcvpt.py \
#       dinov2_vitg14_reg4_pretrain.pth pretrain/vit-g14_dinov2-reg4.pth
# VPT-deep twin: vpt_vit-g14-dinov2_ade20k.py; this config is that one with
# type='CVPTViT' and cross_attn_value_bias=False.
_base_ = ['./vpt_vit-g14-dinov2_ade20k.py']
# The cross-attention without its value/output biases (bv, bo): on a
# LayerScale backbone the paper's CA shifts every block by bv Wo + bo and
# starts far from the frozen features; without them it starts at them. On
# real DINOv2-S/14 weights and Fashion-MNIST this measured best of the CVPT
# variants (README "Evidence on real weights and real images").
model = dict(backbone=dict(type='CVPTViT', cross_attn_value_bias=False))
