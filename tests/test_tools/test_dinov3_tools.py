"""The tools on a DINOv3 config: a tiny-width child of the DINOv3-L/16
UperNet ADE20K config, whose "pretrained" file is a tiny random DINOv3 in
Meta's layout converted by tools/model_converters/vit2mmcvpt.py, trained
for 2 iterations on the embedded sample through tools/train.py, tested by
tools/test.py and loaded from its PEFT file through mmseg's APIs."""
import glob

import pytest
import torch

import mmcvpt  # noqa: F401  (checkpoint allow-list for torch.load below)
from mmcvpt.models import CVPTViT
from tests.seg_fixtures import (REPO, logged_metrics, make_sample,
                                peft_loads_as_full, run_tool)
from tests.test_tools.test_vit2mmcvpt_dinov3 import (C, HEADS, L, _official,
                                                     _timm_model)

CONFIG = REPO / ('configs/dinov3/'
                 'cvpt_vit-l16-dinov3_upernet_8xb2-40k_ade20k-512x512.py')
ARCH = dict(embed_dims=C, num_layers=L, num_heads=HEADS,
            feedforward_channels=4 * C)

TINY = '''
_base_ = ['{config}']
data_root = '{data_root}'
crop_size = (64, 64)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        arch=dict(_delete_=True, **{arch}), img_size=crop_size,
        out_indices=(0, 1), num_prompts=4,
        init_cfg=dict(checkpoint='{pretrained}')),
    neck=dict(in_channels=[{c}] * 2, out_channels=32, scales=[2, 0.5]),
    decode_head=dict(in_channels=[32] * 2, in_index=[0, 1], channels=16),
    auxiliary_head=dict(in_channels=32, in_index=1, channels=8))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(128, 64), ratio_range=(0.8, 1.2),
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 64), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')]
total_batch_size = 2
train_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
train_cfg = dict(max_iters=2, val_interval=2)
param_scheduler = []
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(interval=2, max_keep_ckpts=1, save_best=None))
randomness = dict(seed=0)
'''


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    """Meta-layout tiny DINOv3 -> vit2mmcvpt -> the tiny config trained 2
    iterations; (tmp, config, sample, training log)."""
    tmp = tmp_path_factory.mktemp('dinov3')
    sample = make_sample(tmp / 'samples')
    torch.save(_official(_timm_model('vit').state_dict(), 'vit'),
               tmp / 'dinov3_vitt16_pretrain_lvd1689m-0000.pth')
    run_tool('tools/model_converters/vit2mmcvpt.py',
             str(tmp / 'dinov3_vitt16_pretrain_lvd1689m-0000.pth'),
             str(tmp / 'vit-t16_dinov3.pth'))
    cfg = tmp / 'tiny.py'
    cfg.write_text(
        TINY.format(config=CONFIG, data_root=sample, arch=ARCH, c=C,
                    pretrained=tmp / 'vit-t16_dinov3.pth'))
    run_tool('tools/train.py', str(cfg), '--work-dir', str(tmp / 'work'))
    (log, ) = glob.glob(str(tmp / 'work/2*/2*.log'))
    with open(log) as f:
        return tmp, cfg, sample, f.read()


def test_train_val_test(run):
    tmp, cfg, _, log = run
    assert sorted(p.name for p in (tmp / 'work').glob('*.pth')) == [
        'iter_2.pth', 'iter_2_peft.pth'
    ]
    val = logged_metrics(log, 'val')
    assert set(val) == {'aAcc', 'mIoU', 'mAcc'}
    full = torch.load(tmp / 'work/iter_2.pth', weights_only=True)
    pretrained = torch.load(
        tmp / 'vit-t16_dinov3.pth', weights_only=True)['state_dict']
    state = full['state_dict']
    assert 'backbone.pos_embed' not in state
    # the converted file is what the frozen backbone holds, bit for bit
    assert [k for k, v in pretrained.items()
            if not torch.equal(state['backbone.' + k], v)] == []
    proc = run_tool('tools/test.py', str(cfg), str(tmp / 'work/iter_2.pth'),
                    '--work-dir', str(tmp / 'test'))
    assert logged_metrics(proc.stdout + proc.stderr, 'test') == val


def test_peft_file_through_mmseg_apis(run):
    tmp, cfg, sample, _ = run
    meta = torch.load(tmp / 'work/iter_2_peft.pth',
                      weights_only=True)['meta']['peft']['backbone.']
    assert meta['rope_cfg'] == dict(base=100.) and meta['patch_size'] == 16
    img = sample / 'images/validation/ADE_val_00000003.jpg'
    _, _, logits = peft_loads_as_full(cfg, tmp / 'work/iter_2.pth',
                                      tmp / 'work/iter_2_peft.pth', img)
    assert logits.shape[0] == 150


def test_dinov2_file_into_dinov3_config_one_line(run, tmp_path):
    """A file with an absolute position embedding (DINOv2-style) is refused
    before any tensor loads: exit 1, one error line, no traceback."""
    tmp, cfg, _, _ = run
    vit = CVPTViT(arch=ARCH, img_size=64, patch_size=16, num_prompts=0,
                  layer_scale_init_value=1e-5, num_register_tokens=4)
    torch.save({'state_dict': vit.state_dict()}, tmp_path / 'dinov2.pth')
    proc = run_tool('tools/train.py', str(cfg), '--work-dir',
                    str(tmp_path / 'work'), '--cfg-options',
                    f'model.backbone.init_cfg.checkpoint={tmp_path}/'
                    'dinov2.pth', check=False)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert 'Traceback' not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        'error: pos_embed: the checkpoint has an absolute position embedding '
        '(a DINOv2 or other ViT file) but the model uses rotary positions '
        "(rope={'base': 100.0}); a DINOv3 config needs a DINOv3 checkpoint "
        'converted by tools/model_converters/vit2mmcvpt.py')
    assert not list((tmp_path / 'work').glob('**/*.pth'))
