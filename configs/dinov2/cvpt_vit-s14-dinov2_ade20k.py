# CVPT, frozen DINOv2 ViT-S/14 reg4 + UperNet, ADE20K (README.md here).
_base_ = ['./vpt_vit-s14-dinov2_ade20k.py']
model = dict(
    backbone=dict(
        type='CVPTViT',
        # no value/output biases: starts at the frozen features (README.md)
        cross_attn_value_bias=False,
        # the twin's weights, converted once with
        # python tools/model_converters/vit2mmcvpt.py \
        #     dinov2_vits14_reg4_pretrain.pth pretrain/vit-s14_dinov2-reg4.pth
        init_cfg=dict(checkpoint='pretrain/vit-s14_dinov2-reg4.pth')))
