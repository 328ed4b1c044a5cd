"""mmpretrain users need no mmseg: ``import mmcvpt`` in an interpreter
where mmseg (and mmcv's compiled ops, as with mmcv-lite) cannot be imported
registers the classification pieces, a tiny classification config trains
through a plain ``Runner.from_cfg``, and a segmentation config stops with
one line naming mmseg and its install."""
import json
import subprocess
import sys

from mmengine.config import Config

from tests.sample_fixtures import make_samples
from tests.seg_fixtures import REPO, tiny_config

# 24 train800val200 images of the sample, 12 per batch: 2 iterations.
TINY_CLS = '''
model = dict(
    backbone=dict(arch=dict(_delete_=True, embed_dims=32, num_layers=2,
                            num_heads=2, feedforward_channels=64),
                  img_size=32, num_prompts=2),
    head=dict(in_channels=32))
pipeline = [dict(type='LoadImageFromFile'),
            dict(type='Resize', scale=(32, 32), interpolation='bicubic'),
            dict(type='PackInputs')]
total_batch_size = None
train_dataloader = dict(batch_size=12,
                        dataset=dict(data_root=data_root, pipeline=pipeline))
val_dataloader = dict(dataset=dict(data_root=data_root, pipeline=pipeline))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=1, val_interval=1)
param_scheduler = []
default_hooks = dict(checkpoint=dict(interval=1), logger=dict(interval=1))
'''

# Runs in a fresh interpreter: argv = cls config, seg config.
CHILD = r'''
import json
import os.path as osp
import sys

sys.modules['mmseg'] = None      # mmseg not installed
sys.modules['mmcv._ext'] = None  # mmcv-lite: no compiled ops

import torch  # noqa: E402
import mmcvpt  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.hooks import Hook  # noqa: E402
from mmengine.registry import (  # noqa: E402
    HOOKS, LOOPS, OPTIM_WRAPPER_CONSTRUCTORS, WEIGHT_INITIALIZERS)
from mmengine.runner import Runner  # noqa: E402
from mmpretrain.registry import DATASETS, MODELS  # noqa: E402

out = {'registered': {
    reg.name: [f'{c.__module__}.{c.__name__}' for c in map(reg.get, names)]
    for reg, names in [
        (MODELS, ['CVPTViT', 'VPTViT']), (DATASETS, ['VTAB1k', 'FGVC']),
        (HOOKS, ['TrainableParamReportHook', 'RNGStateHook',
                 'PEFTCheckpointHook', 'PreemptionHook']),
        (LOOPS, ['TotalBatchIterBasedTrainLoop',
                 'TotalBatchEpochBasedTrainLoop']),
        (OPTIM_WRAPPER_CONSTRUCTORS, ['PEFTOptimWrapperConstructor']),
        (WEIGHT_INITIALIZERS, ['StrictPretrained'])]}}


@HOOKS.register_module()
class Snapshot(Hook):
    """The parameters once initialised, before the first step."""

    def before_train(self, runner):
        self.params = {n: p.detach().clone()
                       for n, p in runner.model.named_parameters()}


cfg = Config.fromfile(sys.argv[1])
cfg.custom_hooks.append(dict(type='Snapshot'))
runner = Runner.from_cfg(cfg)
runner.train()
before = next(h for h in runner.hooks if isinstance(h, Snapshot)).params
params = dict(runner.model.named_parameters())
out['scope'] = runner.default_scope.scope_name
out['iter'] = runner.iter
out['trainable'] = sorted(n for n, p in params.items() if p.requires_grad)
out['moved'] = sorted(n for n, p in params.items()
                      if not torch.equal(p, before[n]))
out['files'] = sorted(f for f in ('epoch_1.pth', 'epoch_1_peft.pth')
                      if osp.isfile(osp.join(cfg.work_dir, f)))
try:
    Runner.from_cfg(Config.fromfile(sys.argv[2]))
except ImportError as e:
    out['seg_error'] = str(e)
out['mmseg_modules'] = sorted(
    m for m, mod in sys.modules.items()
    if m.split('.')[0] == 'mmseg' and mod is not None)
out['mmcv_ops'] = sorted(
    m for m, mod in sys.modules.items()
    if m in ('mmcv.ops', 'mmcv._ext') and mod is not None)
print('RESULT ' + json.dumps(out))
'''


def test_classification_without_mmseg(tmp_path):
    root = make_samples.make('vtab1k', str(tmp_path))
    cls_cfg = tmp_path / 'tiny_cls.py'
    cls_cfg.write_text(
        f"_base_ = ['{REPO}/configs/demo/cvpt_vitb_vtab1k-sample.py']\n"
        f"data_root = '{root}'\nwork_dir = '{tmp_path / 'cls_work'}'\n" +
        TINY_CLS)
    # A segmentation config as a user holds it: resolved (no mmseg:: bases,
    # e.g. the copy a run dumps into its work_dir), with
    # default_scope='mmseg' and custom_imports=['mmcvpt'].
    seg = Config.fromfile(
        tiny_config(tmp_path / 'tiny_seg.py', tmp_path / 'ade20k'))
    seg.work_dir = str(tmp_path / 'seg_work')
    seg.dump(tmp_path / 'seg_dumped.py')
    assert seg.default_scope == 'mmseg'
    assert seg.custom_imports.imports == ['mmcvpt']

    proc = subprocess.run(
        [sys.executable, '-c', CHILD, str(cls_cfg),
         str(tmp_path / 'seg_dumped.py')],
        capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.split('RESULT ', 1)[1])

    assert out['registered'] == {
        'model': ['mmcvpt.models.backbones.cvpt_vit.CVPTViT',
                  'mmcvpt.models.backbones.vpt_vit.VPTViT'],
        'dataset': ['mmcvpt.datasets.vtab1k.VTAB1k',
                    'mmcvpt.datasets.fgvc.FGVC'],
        'hook': ['mmcvpt.engine.hooks.param_report_hook.'
                 'TrainableParamReportHook',
                 'mmcvpt.engine.hooks.rng_state_hook.RNGStateHook',
                 'mmcvpt.peft.hook.PEFTCheckpointHook',
                 'mmcvpt.engine.hooks.preemption_hook.PreemptionHook'],
        'loop': ['mmcvpt.engine.runners.total_batch_loop.'
                 'TotalBatchIterBasedTrainLoop',
                 'mmcvpt.engine.runners.total_batch_loop.'
                 'TotalBatchEpochBasedTrainLoop'],
        'optimizer wrapper constructor': [
            'mmcvpt.engine.optimizers.peft_optim_wrapper_constructor.'
            'PEFTOptimWrapperConstructor'],
        'weight initializer': ['mmcvpt.peft.strict_pretrained.'
                               'StrictPretrainedInit'],
    }
    assert out['scope'] == 'mmpretrain'
    assert out['iter'] == 2
    # Prompts and head learn, the frozen ViT does not move.
    assert 'backbone.prompts' in out['trainable']
    assert 'head.fc.weight' in out['trainable']
    assert not any(n.startswith('backbone.layers.') for n in out['trainable'])
    assert out['moved'] == out['trainable']
    assert out['files'] == ['epoch_1.pth', 'epoch_1_peft.pth']
    assert out['seg_error'] == (
        "'SegLocalVisualizer' is looked up in scope 'mmseg' (a config with "
        "default_scope='mmseg') but mmseg is not installed; mmcvpt without "
        'it runs classification (mmpretrain) configs only; for '
        'segmentation: `pip install mmsegmentation==1.2.2` with an mmcv '
        'built with its ops (README "Install into an existing OpenMMLab '
        'environment")')
    assert out['mmseg_modules'] == []
    assert out['mmcv_ops'] == []
