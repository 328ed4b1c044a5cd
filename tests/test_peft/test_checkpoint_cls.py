"""A classification PEFT file (.pth and .safetensors) through mmpretrain's
own APIs."""
import pytest
import torch
from mmengine.registry import DefaultScope

import mmcvpt  # noqa: F401
from mmcvpt.models import CVPTViT
from tests.sample_fixtures import make_samples
from tests.seg_fixtures import REPO, load_tool, run_tool

ARCH = dict(embed_dims=64, num_layers=2, num_heads=4, feedforward_channels=128)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """One epoch of a tiny VTAB-1K config on a 'pretrained' backbone file."""
    tmp = tmp_path_factory.mktemp('peft_cls')
    root = make_samples.make('vtab1k', str(tmp))
    torch.manual_seed(5)
    vit = CVPTViT(arch=ARCH, img_size=64, num_prompts=0)
    torch.save({'state_dict': vit.state_dict()}, tmp / 'vit.pth')
    cfg = tmp / 'tiny_cls.py'
    cfg.write_text(
        f"_base_ = ['{REPO}/configs/demo/cvpt_vitb_vtab1k-sample.py']\n"
        f"data_root = '{root}'\n"
        f'model = dict(backbone=dict(arch=dict(_delete_=True, **{ARCH}), '
        "img_size=64, num_prompts=3, init_cfg=dict(_delete_=True, "
        "type='StrictPretrained', "
        f"checkpoint='{tmp / 'vit.pth'}')), head=dict(in_channels=64))\n"
        "pipeline = [dict(type='LoadImageFromFile'), dict(type='Resize', "
        "scale=(64, 64), interpolation='bicubic'), dict(type='PackInputs')]\n"
        'train_dataloader = dict(dataset=dict(data_root=data_root, '
        'pipeline=pipeline))\n'
        'val_dataloader = dict(dataset=dict(data_root=data_root, '
        'pipeline=pipeline))\n'
        'test_dataloader = val_dataloader\n'
        'train_cfg = dict(max_epochs=1, val_interval=1)\n'
        'param_scheduler = []\n'
        'default_hooks = dict(checkpoint=dict(interval=1))\n')
    run_tool('tools/train.py', str(cfg), '--work-dir', str(tmp / 'work'))
    return cfg, tmp / 'work', root


def test_peft_file_through_mmpretrain_apis_equals_full(trained):
    from mmpretrain.apis import ImageClassificationInferencer, get_model
    cfg, work, root = trained
    img = f'{root}/eurosat/images/test_2_0.jpg'
    peft = torch.load(work / 'epoch_1_peft.pth', weights_only=True)
    assert 'backbone.layers.0.attn.qkv.weight' not in peft['state_dict']
    load_tool('tools/peft/export.py').main([
        str(cfg), str(work / 'epoch_1_peft.pth'),
        str(work / 'peft.safetensors'), '--format', 'safetensors'])
    results, states = [], []
    # As in a fresh process (an earlier test may leave mmseg's scope).
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        for name in ('epoch_1.pth', 'epoch_1_peft.pth', 'peft.safetensors'):
            inferencer = ImageClassificationInferencer(
                model=str(cfg), pretrained=str(work / name), device='cpu')
            results.append(inferencer(img)[0])
            states.append(inferencer.model.state_dict())
            model = get_model(str(cfg), pretrained=str(work / name),
                              device='cpu')
            states.append(model.state_dict())
    for state in states[1:]:
        assert all(torch.equal(state[k], v) for k, v in states[0].items())
    full = torch.as_tensor(results[0]['pred_scores'])
    for result in results[1:]:
        assert torch.equal(torch.as_tensor(result['pred_scores']), full)
        assert result['pred_label'] == results[0]['pred_label']
