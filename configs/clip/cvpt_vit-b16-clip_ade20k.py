# CVPT, frozen OpenAI CLIP ViT-B/16 + UperNet, ADE20K (README.md here).
_base_ = ['./vpt_vit-b16-clip_ade20k.py']
model = dict(
    backbone=dict(
        type='CVPTViT',
        # no value/output biases: starts at the frozen features (README.md)
        cross_attn_value_bias=False,
        # the twin's weights, converted once with
        # python tools/model_converters/vit2mmcvpt.py \
        #     ViT-B-16.pt pretrain/vit-b16_clip-openai.pth
        init_cfg=dict(checkpoint='pretrain/vit-b16_clip-openai.pth')))
