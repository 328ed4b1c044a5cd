# The CVPT paper's segmentation setting: ViT-L/16 + SETR-PUP on ADE20K,
# 512x512 crops, 160k iterations, 16 images per iteration in total (8 GPUs x
# 2, split over any GPU count by tools/train.py), 10 prompts per layer,
# prompt dropout 0.1, SGD lr 1e-3 momentum 0.9 wd 0 with head lr x10 and a
# poly schedule. mmseg's own SETR-PUP ADE20K config already uses that
# optimiser and schedule, so only the backbone changes.
_base_ = [
    'mmseg::setr/setr_vit-l_pup_8xb2-160k_ade20k-512x512.py',
    './_base_/mmcvpt_runtime.py',
]
model = dict(
    backbone=dict(
        _delete_=True,
        type='CVPTViT',
        arch='l',
        img_size=(512, 512),
        patch_size=16,
        out_indices=(9, 14, 19, 23),
        out_type='featmap',
        final_norm=False,
        interpolate_mode='bilinear',
        num_prompts=10,
        prompt_dropout=0.1,
        freeze_backbone=True,
        # ViT-L/16 ImageNet-21k (SETR's), converted to mmpretrain keys
        init_cfg=dict(
            type='Pretrained', checkpoint='pretrain/vit-l16_in21k.pth')))
total_batch_size = 16  # mmseg's train_dataloader.batch_size=2 is per GPU
