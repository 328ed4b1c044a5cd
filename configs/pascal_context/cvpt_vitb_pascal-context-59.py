# CVPT, ViT-B/16 (ImageNet-21k, frozen; the headline backbone of
# configs/cvpt_vitb_ade20k.py) + UperNet on Pascal Context (59 classes,
# background ignored), 480x480 crops, 80k iterations, 16 images per
# iteration in total (4 GPUs x 4, mmseg's Pascal Context recipe;
# tools/train.py splits the total over any GPU count). 200 prompts per layer
# and the headline's optimiser: SGD momentum 0.9, wd 0, poly to 0, lr 1e-3
# for the prompts and x10 for neck and heads (configs/cvpt_vitb_ade20k.py
# gives the reasons); mmseg's 80k schedule file already holds SGD + plain
# OptimWrapper (AMP is opt-in: tools/train.py --amp). Trainable: prompts
# (12 x 200 x 768 = 1.84M), neck, decode and auxiliary heads.
#
# Inference slides a 480x480 window with stride 320 (mmseg's Pascal Context
# setting), so the frozen position embeddings see the training grid (30x30).
#
# Checkpoint (README: "Pretrained weights"), Google's ImageNet-21k ViT-B/16:
#   python tools/model_converters/vit2mmcvpt.py ViT-B_16.npz \
#       pretrain/vit-b16_in21k.pth
# VPT-deep twin: vpt_vitb_pascal-context-59.py. Data: mmseg's layout under
# data/VOCdevkit/VOC2010 (SegmentationClassContext/ from mmseg's
# tools/dataset_converters/pascal_context.py).
_base_ = [
    '../_base_/models/upernet_cvpt_vit-b16.py',
    'mmseg::_base_/datasets/pascal_context_59.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_80k.py',
    '../_base_/mmcvpt_runtime.py',
]
crop_size = (480, 480)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(img_size=crop_size, num_prompts=200),
    decode_head=dict(num_classes=59),
    auxiliary_head=dict(num_classes=59),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(320, 320)))

optim_wrapper = dict(
    optimizer=dict(lr=1e-3, weight_decay=0.0),
    paramwise_cfg=dict(
        custom_keys={
            'neck': dict(lr_mult=10.),
            'head': dict(lr_mult=10.),  # decode_head + auxiliary_head
        }))
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=0.9,
        begin=0,
        end=80000,
        by_epoch=False)
]

# batch_size=4 (mmseg's dataset file) is the per-GPU value for 4 GPUs.
total_batch_size = 16
