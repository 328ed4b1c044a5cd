# The frozen CVPTViT ViT-B/16 of the seg bases (configs/README.md).
vit_backbone = dict(
    # in place of a base's backbone: backbone={{_base_.vit_backbone}}
    _delete_=True,
    type='CVPTViT',
    arch='b',
    img_size=(512, 512),
    patch_size=16,
    out_indices=(2, 5, 8, 11),
    out_type='featmap',
    final_norm=True,
    drop_path_rate=0.1,
    num_prompts=200,  # the paper's segmentation P
    prompt_dropout=0.1,
    freeze_backbone=True,
    # ImageNet-21k ViT-B/16 (the paper's), converted to mmpretrain keys
    # by tools/model_converters/vit2mmcvpt.py (README: Pretrained weights)
    init_cfg=dict(
        type='StrictPretrained', checkpoint='pretrain/vit-b16_in21k.pth'))
