"""The tools on a Mask2Former config: a tiny-width child of the DINOv2
(registers, 14-px patches, LayerScale) ADE20K config trained for 2
iterations on the embedded sample, then tested, loaded from its PEFT file,
tested with --tta and drawn by the prompt-attention tool."""
import glob
import json
import re
import sys

import cv2
import pytest
import torch
from mmengine.config import Config

import mmcvpt  # noqa: F401  (checkpoint allow-list for torch.load below)
from mmcvpt.models import CVPTViT
from tests.seg_fixtures import (REPO, load_tool, logged_metrics, make_sample,
                                peft_loads_as_full, run_tool)
# tools/test.py, then the weights its model tested with
from tests.test_peft.test_checkpoint import TEST_AND_DUMP

CONFIG = REPO / ('configs/mask2former/'
                 'cvpt_vit-l14-dinov2-reg4_mask2former_8xb2-40k_ade20k-'
                 '512x512.py')
ARCH = dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)
BACKBONE = dict(
    arch=ARCH,
    img_size=56,
    patch_size=14,
    num_register_tokens=4,
    layer_scale_init_value=1e-5)

TINY = '''
_base_ = ['{config}']
data_root = '{data_root}'
crop_size = (56, 56)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        arch=dict(_delete_=True, **{arch}), img_size=crop_size,
        out_indices=(1, ), num_prompts=4,
        init_cfg=dict(checkpoint='{pretrained}')),
    # one 32-channel map -> the 4 levels (MultiLevelNeck repeats it)
    neck=dict(in_channels=[32], out_channels=32),
    decode_head=dict(
        in_channels=[32] * 4,
        num_queries=20,
        pixel_decoder=dict(encoder=dict(num_layers=1)),
        transformer_decoder=dict(num_layers=3),
        train_cfg=dict(num_points=14 * 14)))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(112, 56), ratio_range=(0.8, 1.2),
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(112, 56), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')]
total_batch_size = 4
train_dataloader = dict(
    batch_size='auto', num_workers=0, persistent_workers=False,
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

# The training run adds a hook that records every batch it trains on.
RECORDED = '''
_base_ = ['{tiny}']
custom_imports = dict(imports={imports!r})
custom_hooks = {hooks!r}
'''


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    """The tiny config on a 'pretrained' DINOv2-shaped backbone file, 2
    iterations of 4 images, validated at the end; (tmp, config, sample,
    training log)."""
    tmp = tmp_path_factory.mktemp('m2f')
    sample = make_sample(tmp / 'samples')
    torch.manual_seed(3)
    vit = CVPTViT(num_prompts=0, **BACKBONE)
    for layer in vit.layers:  # LayerScale far from its 1e-5 init
        for gamma in (layer.attn.gamma1, layer.ffn.gamma2):
            gamma.weight.data.uniform_(0.5, 1.5)
    torch.save({'state_dict': vit.state_dict()}, tmp / 'vit_tiny.pth')
    cfg = tmp / 'tiny.py'
    cfg.write_text(
        TINY.format(config=CONFIG, data_root=sample, arch=ARCH,
                    pretrained=tmp / 'vit_tiny.pth'))
    base = Config.fromfile(cfg)
    recorded = tmp / 'recorded.py'
    recorded.write_text(
        RECORDED.format(
            tiny=cfg,
            imports=base.custom_imports.imports +
            ['tests.test_engine.test_runners.toy'],
            hooks=[h.to_dict() for h in base.custom_hooks] +
            [dict(type='BatchRecorderHook')]))
    # the repository's tests package, not another one on the path
    run_tool('tools/train.py', str(recorded), '--work-dir', str(tmp / 'work'),
             env=dict(PYTHONPATH=str(REPO)))
    (log, ) = glob.glob(str(tmp / 'work/2*/2*.log'))
    with open(log) as f:
        return tmp, cfg, sample, f.read()


def test_train_val_test_and_overlays(run):
    tmp, cfg, sample, log = run
    names = sorted(p.name for p in (tmp / 'work').glob('*.pth'))
    assert names == ['iter_2.pth', 'iter_2_peft.pth']
    assert 'Iter(train) [2/2]' in log
    val = logged_metrics(log, 'val')
    assert set(val) == {'aAcc', 'mIoU', 'mAcc'} and 0 <= val['mIoU'] <= 100
    proc = run_tool('tools/test.py', str(cfg), str(tmp / 'work/iter_2.pth'),
                    '--work-dir', str(tmp / 'test'), '--show-dir',
                    str(tmp / 'overlays'))
    log = proc.stdout + proc.stderr
    assert 'Iter(test) [8/8]' in log
    # the checkpoint the validation ran on: the same metrics
    assert logged_metrics(log, 'test') == val
    pngs = sorted((tmp / 'overlays').rglob('*.png'))
    assert len(pngs) == 8  # one per validation image
    for png in pngs:
        (name, ) = re.findall(r'ADE_val_\d+', png.name)
        h, w = cv2.imread(
            str(sample / f'images/validation/{name}.jpg')).shape[:2]
        # ground truth | prediction at the image's size
        assert cv2.imread(str(png)).shape == (h, 2 * w, 3)


def test_peft_file_has_only_tuned_tensors(run):
    tmp, _, _, _ = run
    full = torch.load(tmp / 'work/iter_2.pth', weights_only=True)
    peft = torch.load(tmp / 'work/iter_2_peft.pth', weights_only=True)
    frozen = {
        k
        for k in full['state_dict']
        if k.startswith('backbone.') and k != 'backbone.prompts'
    }
    # registers and LayerScale are frozen tensors of the pretrained file
    assert 'backbone.register_tokens' in frozen
    assert 'backbone.layers.1.attn.gamma1.weight' in frozen
    assert set(peft['state_dict']) == set(full['state_dict']) - frozen
    assert 'decode_head.transformer_decoder.layers.2.ffn.layers.1.weight' \
        in peft['state_dict']
    meta = peft['meta']['peft']['backbone.']
    assert (meta['num_prompts'], meta['patch_size'],
            meta['num_register_tokens']) == (4, 14, 4)


def test_peft_file_through_mmseg_apis_equals_full_checkpoint(run):
    """init_model / MMSegInferencer with the small file: the full
    checkpoint's tensors, logits equal to the last bit."""
    tmp, cfg, sample, _ = run
    img = str(sample / 'images/validation/ADE_val_00000003.jpg')
    full, inferencer, logits = peft_loads_as_full(
        cfg, tmp / 'work/iter_2.pth', tmp / 'work/iter_2_peft.pth', img)
    pretrained = torch.load(
        tmp / 'vit_tiny.pth', weights_only=True)['state_dict']
    gamma = full.state_dict()['backbone.layers.0.ffn.gamma2.weight']
    assert torch.equal(gamma, pretrained['layers.0.ffn.gamma2.weight'])
    assert logits.shape == (150, 288, 288)  # the image, 150 classes
    pred = inferencer(img, return_datasamples=True).pred_sem_seg.data
    assert torch.equal(pred, logits.argmax(0, keepdim=True))


def test_peft_file_through_test_tool_tta(run, tmp_path):
    """--tta on the PEFT file: mIoU logged, the wrapped Mask2Former tested
    with exactly the full checkpoint's tensors."""
    tmp, cfg, _, _ = run
    full = torch.load(tmp / 'work/iter_2.pth', weights_only=True)
    proc = run_tool(sys.executable, '-c', TEST_AND_DUMP,
                    str(tmp_path / 'used.pth'), 'tools/test.py', str(cfg),
                    str(tmp / 'work/iter_2_peft.pth'), '--tta', '--work-dir',
                    str(tmp_path / 'work'), '--cfg-options',
                    'test_dataloader.dataset.indices=1')
    log = proc.stdout + proc.stderr
    assert 'Iter(test) [1/1]' in log
    assert 'do not match exactly' not in log and 'missing keys' not in log
    (stamp, ) = [d for d in (tmp_path / 'work').iterdir() if d.is_dir()]
    metrics = json.loads((stamp / f'{stamp.name}.json').read_text())
    assert metrics['mIoU'] == logged_metrics(log, 'test')['mIoU']
    run_cfg = Config.fromfile(stamp / 'vis_data/config.py')
    assert run_cfg.model.type == 'SegTTAModel'
    assert run_cfg.model.module.decode_head.type == 'Mask2FormerHead'
    used = torch.load(tmp_path / 'used.pth', weights_only=True)
    assert used.keys() == {'module.' + k for k in full['state_dict']}
    assert [k for k, v in full['state_dict'].items()
            if not torch.equal(used['module.' + k], v)] == []


def test_prompt_attention_picture(run, tmp_path):
    """The user's command on the PEFT file; the maps it draws cover the
    patches only (no class or register token)."""
    tmp, cfg, sample, _ = run
    tool = load_tool('tools/visualization/prompt_attention.py')
    ckpt = str(tmp / 'work/iter_2_peft.pth')
    image = str(sample / 'images/validation/ADE_val_00000001.jpg')
    out = tmp_path / 'attn.png'
    tool.main([
        str(cfg), ckpt, image, '--layers', '0', '1', '--prompts', '2',
        '--out',
        str(out)
    ])
    png = cv2.imread(str(out))
    assert png is not None and png.shape[1] > png.shape[0]
    model = tool.build_model(str(cfg), ckpt)
    resized, maps = tool.prompt_attention(model, cv2.imread(image), {0, 1})
    # 240 x 320 -> shorter side 56, whole 14-px patches: 4 x 5 patches
    assert resized.shape == (56, 70, 3)
    for change, probs in maps.values():
        assert change.shape == (4, 5) and probs.shape == (4, 4, 5)
        torch.testing.assert_close(probs.sum(0), torch.ones(4, 5))


def test_total_batch_trains_batches_of_four(run):
    tmp, _, _, log = run
    assert 'total batch 4 = 4 per process x 1 process x 1 accumulation' in log
    with open(tmp / 'work/batches_rank0.json') as f:
        assert json.load(f) == [4, 4]
