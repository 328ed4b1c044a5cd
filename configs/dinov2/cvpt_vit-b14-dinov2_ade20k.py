# CVPT on a frozen DINOv2 ViT-B/14 with 4 registers (dinov2_vitb14_reg4,
# LVD-142M) + UperNet on ADE20K: the headline configs/cvpt_vitb_ade20k.py
# (512x512 crops, 160k iterations, 16 images per iteration in total, 200
# prompts per layer, SGD 1e-3 with neck/head lr x10, poly, fp32 unless
# --amp) with the backbone swapped. Trainable: prompts (12 x 200 x 768 =
# 1.84M), neck, decode and auxiliary heads.
#
# DINOv2: patch 14, LayerScale (the pretrained gammas load over the 1e-5
# init), 4 register tokens after the class token (frozen; never in the
# outputs). The registers are the default because DINOv2's authors
# recommend them for dense features (Darcet et al., "Vision Transformers
# Need Registers", arXiv 2309.16588: without them high-norm artifact tokens
# appear in the feature maps). For the original DINOv2 without registers set
# num_register_tokens=0 and use its converted file (docs/foundation_
# backbones.md). The pretrained position embedding (518x518, 37x37 patches)
# needs no resize here: the patch embedding pads a 512 crop to 518, 37x37
# patches; for other crops it is resized on load (bicubic).
#
# Checkpoint: https://dl.fbaipublicfiles.com/dinov2/dinov2_vitb14/
# dinov2_vitb14_reg4_pretrain.pth (or timm's
# vit_base_patch14_reg4_dinov2.lvd142m), converted once:
#   python tools/model_converters/vit2mmcvpt.py \
#       dinov2_vitb14_reg4_pretrain.pth pretrain/vit-b14_dinov2-reg4.pth
# VPT-deep twin: vpt_vit-b14-dinov2_ade20k.py; this config is that one with
# type='CVPTViT' and cross_attn_value_bias=False.
_base_ = ['./vpt_vit-b14-dinov2_ade20k.py']
# The cross-attention without its value/output biases (bv, bo): on a
# LayerScale backbone the paper's CA shifts every block by bv Wo + bo and
# starts far from the frozen features; without them it starts at them. On
# real DINOv2-S/14 weights and Fashion-MNIST this measured best of the CVPT
# variants (README "Evidence on real weights and real images").
model = dict(backbone=dict(type='CVPTViT', cross_attn_value_bias=False))
