# The CVPT paper's setting: ViT-L/16 + SETR-PUP, ADE20K (configs/README.md).
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
        num_prompts=200,
        prompt_dropout=0.1,
        freeze_backbone=True,
        # ViT-L/16 ImageNet-21k (SETR's), converted to mmpretrain keys
        init_cfg=dict(
            type='StrictPretrained', checkpoint='pretrain/vit-l16_in21k.pth')))
# 16 images per optimizer step in total (mmseg's 8 GPUs x 2), split by the
# train loop over the GPUs x accumulation
total_batch_size = 16
auto_scale_lr = dict(base_batch_size=total_batch_size)  # the lr's batch
train_dataloader = dict(batch_size='auto')
train_cfg = dict(type='TotalBatchIterBasedTrainLoop')
