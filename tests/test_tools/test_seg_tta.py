"""Multi-scale + flip testing (the paper's "MS" column): tools/test.py --tta
on the embedded ADE20K sample with mmseg's ADE20K tta_pipeline, inherited by
the tiny config from the demo config like every ADE20K config."""
import json

import mmcv
import numpy as np
import pytest
import torch
from mmengine.config import Config

import mmcvpt  # noqa: F401  (checkpoint allow-list for torch.load below)

from tests.seg_fixtures import make_sample, run_tool, tiny_config

RATIOS = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    """The tiny config trained for one iteration; (config, checkpoint,
    sample)."""
    work = tmp_path_factory.mktemp('tta')
    sample = make_sample(work / 'samples')
    cfg = tiny_config(work / 'tiny.py', sample, iters=1)
    run_tool('tools/train.py', str(cfg), '--work-dir', str(work / 'train'))
    return cfg, work / 'train/iter_1.pth', sample


def _metrics_and_config(work_dir):
    """The metrics json and the dumped config of a tools/test.py run."""
    (stamp, ) = [d for d in work_dir.iterdir() if d.is_dir()]
    metrics = json.loads((stamp / f'{stamp.name}.json').read_text())
    return metrics, Config.fromfile(stamp / 'vis_data/config.py')


def test_tta_runs_every_scale_and_flip(checkpoint, tmp_path):
    cfg, ckpt, _ = checkpoint
    # 2 of the sample's 8 validation images: 12 forwards each
    proc = run_tool('tools/test.py', str(cfg), str(ckpt), '--tta',
                    '--work-dir', str(tmp_path), '--cfg-options',
                    'test_dataloader.dataset.indices=2')
    log = proc.stdout + proc.stderr
    assert 'Iter(test) [2/2]' in log and 'mIoU' in log
    metrics, run_cfg = _metrics_and_config(tmp_path)
    assert {'aAcc', 'mIoU', 'mAcc'} <= set(metrics)
    assert 0 <= metrics['mIoU'] <= 100 and 0 < metrics['aAcc'] <= 100
    # what the run was built from: the TTA wrapper around the segmentor and
    # mmseg's ADE20K pipeline, 6 scales x 2 flips
    assert run_cfg.model.type == 'SegTTAModel'
    assert run_cfg.model.module.type == 'EncoderDecoder'
    assert run_cfg.model.module.backbone.type == 'CVPTViT'
    _, tta = run_cfg.test_dataloader.dataset.pipeline
    assert tta.type == 'TestTimeAug'
    assert [t.scale_factor for t in tta.transforms[0]] == RATIOS
    assert [t.prob for t in tta.transforms[1]] == [0.0, 1.0]


def test_tta_evaluates_the_checkpoint_against_the_annotations(
        checkpoint, tmp_path):
    """A checkpoint whose decode head says class 6 everywhere, at every scale
    and flip: the TTA metrics are the hand-computed ones of the annotation
    files at their own resolution."""
    cfg, ckpt, sample = checkpoint
    state = torch.load(ckpt, weights_only=True)
    weights = state['state_dict']
    weights['decode_head.conv_seg.weight'].zero_()
    weights['decode_head.conv_seg.bias'].fill_(-10.)[6] = 10.
    torch.save(state, tmp_path / 'class6.pth')
    run_tool('tools/test.py', str(cfg), str(tmp_path / 'class6.pth'), '--tta',
             '--work-dir', str(tmp_path / 'test'), '--cfg-options',
             'test_dataloader.dataset.indices=2')
    metrics, _ = _metrics_and_config(tmp_path / 'test')
    # ADE20K: label = PNG value - 1, PNG 0 is ignored
    labels = np.concatenate([
        mmcv.imread(path, flag='unchanged').ravel().astype(int) - 1
        for path in sorted((sample /
                            'annotations/validation').glob('*.png'))[:2]
    ])
    labels = labels[labels >= 0]
    present = np.unique(labels)
    assert 6 in present and len(present) > 1
    acc = 100 * np.mean(labels == 6)
    assert metrics['aAcc'] == pytest.approx(acc, abs=0.01)
    # IoU of class 6 = its share of the pixels; 0 for the other classes
    assert metrics['mIoU'] == pytest.approx(acc / len(present), abs=0.01)
