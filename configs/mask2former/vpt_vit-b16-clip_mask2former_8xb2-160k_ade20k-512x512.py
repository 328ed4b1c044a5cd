# VPT-deep twin of the cvpt_ config of this name (README.md here).
_base_ = ['./vpt_vit-b16_mask2former_8xb2-160k_ade20k-512x512.py']
model = dict(
    data_preprocessor=dict(
        mean=[122.7709383, 116.7460125, 104.09373615],
        std=[68.5005327, 66.6321579, 70.32316305]),
    backbone=dict(
        pre_norm=True,
        norm_cfg=dict(type='LN', eps=1e-5),
        layer_cfgs=dict(act_cfg=dict(type='mmpretrain.QuickGELU')),
        # python tools/model_converters/vit2mmcvpt.py \
        #     ViT-B-16.pt pretrain/vit-b16_clip-openai.pth
        init_cfg=dict(checkpoint='pretrain/vit-b16_clip-openai.pth')))
