import os

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS

import mmcvpt  # noqa: F401
from mmcvpt.engine import load_peft_checkpoint
from mmcvpt.models import CVPTViT
from tests.seg_fixtures import make_sample, run_tool, tiny_config

ARCH = dict(embed_dims=64, num_layers=4, num_heads=4, feedforward_channels=128)


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    """Tiny seg model on a 'pretrained' backbone file, 2 iterations."""
    tmp = tmp_path_factory.mktemp('peft')
    sample = make_sample(tmp / 'samples')
    torch.manual_seed(3)
    vit = CVPTViT(arch=ARCH, img_size=64, num_prompts=0)
    pretrained = tmp / 'vit_tiny.pth'
    torch.save({'state_dict': vit.state_dict()}, pretrained)
    extra = ("model.update(backbone=dict(model['backbone'], init_cfg=dict("
             f"_delete_=True, type='Pretrained', checkpoint='{pretrained}'"
             ')))\n')
    cfg = tiny_config(tmp / 'tiny.py', sample, extra=extra)
    run_tool('tools/train.py', str(cfg), '--work-dir', str(tmp / 'work'))
    return tmp, cfg, sample


def test_peft_file_has_only_tuned_tensors(run):
    tmp, cfg, _ = run
    full = torch.load(tmp / 'work/iter_2.pth', weights_only=True)
    peft = torch.load(tmp / 'work/iter_2_peft.pth', weights_only=True)
    frozen = {
        k
        for k in full['state_dict']
        if k.startswith('backbone.') and k != 'backbone.prompts'
    }
    assert set(peft['state_dict']) == set(full['state_dict']) - frozen
    assert 'decode_head.bottleneck.bn.running_mean' in peft['state_dict']
    assert peft['meta']['peft']['num_prompts'] == 4
    assert peft['meta']['peft']['arch'] == dict(
        embed_dims=64, num_layers=4, num_heads=4)
    assert peft['meta']['dataset_meta']['classes'][0] == 'wall'
    ratio = os.path.getsize(tmp / 'work/iter_2_peft.pth') / os.path.getsize(
        tmp / 'work/iter_2.pth')
    assert ratio < 0.5  # no frozen backbone, no optimizer state


def test_export_full_reproduces_predictions(run):
    from mmseg.apis import inference_model, init_model
    tmp, cfg, sample = run
    run_tool('tools/peft/export_full.py', str(cfg),
             str(tmp / 'work/iter_2_peft.pth'), str(tmp / 'merged.pth'))
    img = str(sample / 'images/validation/ADE_val_00000003.jpg')
    preds = []
    for ckpt in ('work/iter_2.pth', 'merged.pth'):
        model = init_model(str(cfg), str(tmp / ckpt), device='cpu')
        with torch.no_grad():
            preds.append(inference_model(model, img).seg_logits.data)
    assert torch.equal(preds[0], preds[1])


def test_load_from_peft_file_with_test_tool(run):
    tmp, cfg, _ = run
    logs = [
        run_tool('tools/test.py', str(cfg), str(tmp / f'work/{name}'),
                 '--work-dir', str(tmp / name)).stdout
        for name in ('iter_2.pth', 'iter_2_peft.pth')
    ]
    metrics = [
        line[line.index('aAcc'):] for log in logs for line in log.splitlines()
        if 'Iter(test)' in line and 'aAcc' in line
    ]
    assert len(metrics) == 2 and metrics[0].split('data_time')[0] == \
        metrics[1].split('data_time')[0]


def test_mismatched_metadata_is_refused(run):
    tmp, cfg, _ = run
    config = Config.fromfile(cfg)
    config.model.backbone.num_prompts = 8
    with MODELS.switch_scope_and_registry('mmseg') as reg:
        model = reg.build(config.model)
    with pytest.raises(
            ValueError,
            match=r'PEFT checkpoint .*iter_2_peft\.pth '
            r'was saved for num_prompts=4 but this model has '
            r'num_prompts=8; use the config it was trained with'):
        load_peft_checkpoint(model, str(tmp / 'work/iter_2_peft.pth'))
