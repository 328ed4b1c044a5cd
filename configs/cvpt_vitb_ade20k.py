# Headline: CVPT ViT-B/16 + UperNet on ADE20K (configs/cvpt/README.md).
_base_ = ['./cvpt/cvpt_vit-b16_upernet_8xb2-160k_ade20k-512x512.py']
