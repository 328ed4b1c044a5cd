# CVPT, ViT-B/16 (ImageNet-21k, frozen; the headline backbone of
# configs/cvpt_vitb_ade20k.py) + UperNet on Cityscapes (19 classes),
# 512x1024 crops, 80k iterations, 8 images per iteration in total (4 GPUs x
# 2, mmseg's Cityscapes recipe; tools/train.py splits the total over any GPU
# count). 200 prompts per layer and the headline's optimiser: SGD momentum
# 0.9, wd 0, poly to 0, lr 1e-3 for the prompts and x10 for neck and heads
# (configs/cvpt_vitb_ade20k.py gives the reasons); mmseg's 80k schedule file
# already holds SGD + plain OptimWrapper (AMP is opt-in: tools/train.py --amp).
# Trainable: prompts (12 x 200 x 768 = 1.84M), neck, decode and auxiliary
# heads.
#
# Inference slides a 512x1024 window (stride 341x682) over the 1024x2048
# image: the frozen position embeddings then see the token grid they were
# resized to at training time (32x64) instead of a 2x larger one.
#
# Checkpoint (README: "Pretrained weights"), Google's ImageNet-21k ViT-B/16:
#   python tools/model_converters/vit2mmcvpt.py ViT-B_16.npz \
#       pretrain/vit-b16_in21k.pth
# VPT-deep twin: vpt_vitb_cityscapes.py. Data: mmseg's layout under
# data/cityscapes (leftImg8bit/, gtFine/ with *_labelTrainIds.png).
_base_ = [
    '../_base_/models/upernet_cvpt_vit-b16.py',
    'mmseg::_base_/datasets/cityscapes.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_80k.py',
    '../_base_/mmcvpt_runtime.py',
]
crop_size = (512, 1024)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(img_size=crop_size, num_prompts=200),
    decode_head=dict(num_classes=19),
    auxiliary_head=dict(num_classes=19),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 682)))

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

# batch_size=2 (mmseg's dataset file) is the per-GPU value for 4 GPUs.
total_batch_size = 8
