import cv2
import pytest
import torch
from mmengine.registry import DefaultScope

import mmcvpt  # noqa: F401
from tests.sample_fixtures import make_samples
from tests.seg_fixtures import REPO, load_tool, run_tool

TINY = '''
model = dict(
    backbone=dict(arch=dict(_delete_=True, embed_dims=64, num_layers=2,
                            num_heads=4, feedforward_channels=128),
                  img_size=64, num_prompts=3),
    head=dict(in_channels=64))
pipeline = [dict(type='LoadImageFromFile'),
            dict(type='Resize', scale=(64, 64), interpolation='bicubic'),
            dict(type='PackInputs')]
train_dataloader = dict(dataset=dict(data_root=data_root, pipeline=pipeline))
val_dataloader = dict(dataset=dict(data_root=data_root, pipeline=pipeline))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=1, val_interval=1)
param_scheduler = []
default_hooks = dict(checkpoint=dict(interval=1))
'''


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('cls')
    root = make_samples.make('vtab1k', str(tmp))
    cfg = tmp / 'tiny_cls.py'
    cfg.write_text(
        f"_base_ = ['{REPO}/configs/demo/cvpt_vitb_vtab1k-sample.py']\n"
        f"data_root = '{root}'\n" + TINY)
    proc = run_tool('tools/train.py', str(cfg), '--work-dir',
                    str(tmp / 'work'))
    return cfg, tmp / 'work', root, proc.stdout + proc.stderr


def test_one_epoch_train_and_val(trained):
    cfg, work, _, log = trained
    assert 'accuracy/top1' in log and 'Epoch(val) [1]' in log
    assert 'total batch 8 = 8 per process x 1 process' in log  # the demo's
    # what tools/vtab/summarize.py reads back from mmengine's own files
    assert load_tool('tools/vtab/summarize.py').run_total_batch(work) == [8]
    ckpt = torch.load(work / 'epoch_1.pth', weights_only=True)
    assert ckpt['state_dict']['backbone.prompts'].shape == (2, 3, 64)
    assert (work / 'epoch_1_peft.pth').is_file()


def test_mmpretrain_apis(trained):
    from mmpretrain.apis import ImageClassificationInferencer, get_model
    cfg, work, root, _ = trained
    ckpt = str(work / 'epoch_1.pth')
    img = f'{root}/eurosat/images/test_2_0.jpg'
    # As in a fresh process: earlier tests here left mmseg's scope current,
    # which mmpretrain's inferencer would use to build its pipeline.
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        inferencer = ImageClassificationInferencer(
            model=str(cfg), pretrained=ckpt, device='cpu')
        result = inferencer(img)[0]
        model = get_model(str(cfg), pretrained=ckpt, device='cpu')
    # The classifier's logits computed here from the image file: the
    # config's pipeline (bicubic resize to 64x64) and ImageNet mean/std.
    image = cv2.resize(
        cv2.imread(img), (64, 64), interpolation=cv2.INTER_CUBIC)
    x = torch.from_numpy(image[..., ::-1].copy()).permute(2, 0, 1).float()
    x = (x - torch.tensor([123.675, 116.28, 103.53])[:, None, None]) / \
        torch.tensor([58.395, 57.12, 57.375])[:, None, None]
    with torch.no_grad():
        logits = model.eval()(x[None], mode='tensor')[0]
    assert logits.shape == (10, )
    assert result['pred_label'] == int(logits.argmax())
    scores = torch.as_tensor(result['pred_scores'])
    assert float(scores.sum()) == pytest.approx(1, abs=1e-5)
    torch.testing.assert_close(scores, logits.softmax(0), atol=1e-5, rtol=1e-4)
    assert type(model.backbone).__name__ == 'CVPTViT'
    assert torch.equal(
        model.backbone.prompts,
        torch.load(ckpt, weights_only=True)['state_dict']['backbone.prompts'])
