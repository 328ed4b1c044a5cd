# CVPT on a frozen OpenAI CLIP ViT-B/16 image encoder + UperNet on ADE20K:
# the headline configs/cvpt_vitb_ade20k.py (512x512 crops, 160k iterations,
# 16 images per iteration in total, 200 prompts per layer, SGD 1e-3 with
# neck/head lr x10, poly, fp32 unless --amp) with the backbone swapped.
# Trainable: prompts (12 x 200 x 768 = 1.84M), neck, decode and auxiliary
# heads.
#
# CLIP's encoder differs from the IN-21k ViT in: a LayerNorm before the
# first block (pre_norm, which also drops the patch-embedding bias),
# QuickGELU, LayerNorm eps 1e-5, and CLIP's own pixel mean/std (OpenAI's
# values, as mmpretrain's CLIP configs). The 224x224 (14x14) position
# embedding is resized to the 32x32 grid of a 512 crop on load (bicubic).
#
# Checkpoint: OpenAI's ViT-B-16.pt (https://openaipublic.azureedge.net/clip/
# models/5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f/
# ViT-B-16.pt; or timm's vit_base_patch16_clip_224.openai), converted once:
#   python tools/model_converters/vit2mmcvpt.py ViT-B-16.pt \
#       pretrain/vit-b16_clip-openai.pth
# VPT-deep twin: vpt_vit-b16-clip_ade20k.py; this config is that one with
# type='CVPTViT' and cross_attn_value_bias=False.
_base_ = ['./vpt_vit-b16-clip_ade20k.py']
# The cross-attention without its value/output biases (bv, bo): the paper's
# CA shifts every block by bv Wo + bo whatever the prompts are; without them
# it starts next to the frozen features. Measured best of the CVPT variants
# on real DINOv2-S/14 weights (no CLIP weights ship with a package, so not
# measured on CLIP): README "Evidence on real weights and real images".
model = dict(backbone=dict(type='CVPTViT', cross_attn_value_bias=False))
