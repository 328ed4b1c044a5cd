"""A user's own classification data under a made-up name: a folder in the
VTAB-1K filelist layout or FGVC-style json splits trains from the README's
short configs with a plain ``Runner.from_cfg(cfg).train()``; bad input
stops with one line."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

import mmcvpt  # noqa: F401
from mmcvpt.datasets import FGVC, VTAB1k
from tests.sample_fixtures import make_samples
from tests.readme_snippets import OWN_PROJECT, section_blocks
from tests.seg_fixtures import REPO

# The README's snippets ("Your own data"), as written there.
VTAB_SNIPPET, FGVC_SNIPPET = [
    block for block in section_blocks(OWN_PROJECT, 'python')
    if 'num_classes=3' in block]
# Tiny width, no pretrained file, 2 iterations (18 / 12 train images).
TINY = """\
_base_ = ['./my_config.py']
model = dict(
    backbone=dict(arch=dict(_delete_=True, embed_dims=64, num_layers=2,
                            num_heads=4, feedforward_channels=128),
                  img_size=64, num_prompts=3, init_cfg=None),
    head=dict(in_channels=64))
pipeline = [dict(type='LoadImageFromFile'),
            dict(type='Resize', scale=(64, 64), interpolation='bicubic'),
            dict(type='PackInputs')]
loader = dict(num_workers=0, persistent_workers=False,
              dataset=dict(pipeline=pipeline))
train_dataloader = dict(batch_size={batch}, **loader)
val_dataloader = dict(batch_size=8, **loader)
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=1, val_interval=1)
param_scheduler = []
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
"""


FGVC_SPLIT_SIZES = (('train', 3), ('val', 1), ('test', 2))  # per class


def _make_fgvc(root, labels=(0, 1, 2), per_split=FGVC_SPLIT_SIZES):
    """FGVC-style json splits, images beside the json files."""
    rng = np.random.default_rng(0)
    for split, per_class in per_split:
        anno = {}
        for label in labels:
            for k in range(per_class):
                name = f'class{label}/{split}_{k}.jpg'
                make_samples._write(
                    osp.join(root, name),
                    make_samples._class_image(rng, label))
                anno[name] = label
        with open(osp.join(root, f'{split}.json'), 'w') as f:
            json.dump(anno, f)
    return str(root)


def _train(tmp_path, snippet, placeholder, data_root, batch):
    """The snippet with the checkout's base config and ``data_root``, under
    a tiny override; a plain Runner trains it."""
    assert placeholder in snippet
    (tmp_path / 'my_config.py').write_text(
        snippet.replace('mmcvpt::', f'{REPO}/configs/').replace(
            placeholder, data_root))
    cfg_path = tmp_path / f'tiny_{osp.basename(data_root)}.py'
    cfg_path.write_text(TINY.format(batch=batch))
    cfg = Config.fromfile(cfg_path)
    cfg.work_dir = str(tmp_path / 'work')
    # the Runner makes its scope current: leave no trace for later tests
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        runner = Runner.from_cfg(cfg)
        runner.train()
    return runner


@pytest.mark.parametrize('layout', ['vtab1k', 'fgvc'])
def test_snippet_trains_own_data(tmp_path, layout):
    if layout == 'vtab1k':
        root = str(tmp_path / 'data')
        make_samples.make_vtab1k(root, tasks=('my_task', ), num_classes=3)
        runner = _train(tmp_path, VTAB_SNIPPET, 'data/my_data', root,
                        batch=9)
        dataset_type, n_val = VTAB1k, 6
    else:
        root = _make_fgvc(tmp_path / 'my_birds')
        runner = _train(tmp_path, FGVC_SNIPPET, 'data/my_birds', root,
                        batch=6)
        dataset_type, n_val = FGVC, 6
    train_set = runner.train_dataloader.dataset
    assert type(train_set) is dataset_type
    assert list(train_set.metainfo['classes']) == ['0', '1', '2']
    assert sorted({train_set.get_data_info(i)['gt_label']
                   for i in range(len(train_set))}) == [0, 1, 2]
    assert runner.iter == 2 and runner.epoch == 1
    assert len(runner.val_dataloader.dataset) == n_val  # the test split
    assert 'val/accuracy/top1' in runner.message_hub.log_scalars
    state = torch.load(
        tmp_path / 'work/epoch_1.pth', weights_only=True)['state_dict']
    assert state['head.fc.weight'].shape == (3, 64)
    assert state['backbone.prompts'].shape == (2, 3, 64)
    assert runner.model.data_preprocessor.num_classes == 3


@pytest.fixture(scope='module')
def own(tmp_path_factory):
    """A made-up VTAB-layout task and FGVC-style dataset, 3 classes each."""
    tmp = tmp_path_factory.mktemp('own')
    make_samples.make_vtab1k(str(tmp / 'vtab'), tasks=('my_task', ),
                             num_classes=3)
    return str(tmp / 'vtab'), _make_fgvc(tmp / 'my_birds')


def test_unknown_name_without_num_classes(own):
    vtab, fgvc = own
    with pytest.raises(ValueError) as e:
        VTAB1k(vtab, 'my_task')
    assert str(e.value) == (
        "task 'my_task' is not one of the 19 VTAB-1K tasks: for your own "
        f'data in this layout, read from {vtab}/my_task, set '
        'num_classes=<number of classes>')
    with pytest.raises(ValueError) as e:
        FGVC(fgvc, 'my_birds', 'test')
    assert str(e.value) == (
        "dataset 'my_birds' is not one of VPT's 5 FGVC datasets: for your "
        f'own data in this layout, read from {fgvc}, set '
        'num_classes=<number of classes>')
    with pytest.raises(
            ValueError,
            match=r"^task 'eurosat_rgb' is not one of the 19 VTAB-1K tasks "
            r"\(did you mean 'eurosat'\?\): .*/eurosat_rgb \(not found\), "
            r'set num_classes='):
        VTAB1k(vtab, 'eurosat_rgb')


def test_label_outside_num_classes(own, tmp_path):
    vtab, fgvc = own
    # labels 0..2 in the files: 2 classes is too few, one line says where
    with pytest.raises(ValueError) as e:
        VTAB1k(vtab, 'my_task', 'test', num_classes=2)
    assert str(e.value) == (f'{vtab}/my_task/test.txt:5: label 2 outside '
                            '0..1 (num_classes=2)')
    with pytest.raises(ValueError) as e:
        FGVC(fgvc, 'my_birds', 'train', num_classes=2)
    assert str(e.value) == (
        f'{fgvc}/train.json: 3 distinct labels, my_birds has num_classes=2 '
        '(labels map to 0..1 in sorted order; '
        "'class2/train_0.jpg' has label 2, the first beyond)")
    with pytest.raises(
            ValueError, match=r'^num_classes must be a positive integer, '
            r'got True$'):
        VTAB1k(vtab, 'my_task', num_classes=True)


def test_class_names(own, tmp_path):
    vtab, fgvc = own
    names = tmp_path / 'classes.txt'
    names.write_text('rose\ntulip\nlily\n')
    for dataset in (VTAB1k(vtab, 'my_task', classes=str(names)),
                    FGVC(fgvc, 'my_birds', classes=str(names))):
        # ``classes`` gives the names and, for an unknown name, the count
        assert list(dataset.metainfo['classes']) == ['rose', 'tulip', 'lily']
    ds = VTAB1k(vtab, 'my_task', num_classes=3, classes=('a', 'b', 'c'))
    assert list(ds.metainfo['classes']) == ['a', 'b', 'c']
    assert ds.class_to_idx == {'a': 0, 'b': 1, 'c': 2}
    with pytest.raises(ValueError) as e:
        VTAB1k(vtab, 'my_task', num_classes=3, classes=['a', 'b'])
    assert str(e.value) == 'classes has 2 names, my_task has num_classes=3'
    with pytest.raises(ValueError) as e:
        FGVC(fgvc, 'my_birds', num_classes=4, classes=['a', 'b', 'c'])
    assert str(e.value) == 'classes has 3 names, my_birds has num_classes=4'
    with pytest.raises(FileNotFoundError,
                       match=r'^classes file not found: .*/nowhere\.txt$'):
        VTAB1k(vtab, 'my_task', classes=str(tmp_path / 'nowhere.txt'))


def test_fgvc_image_folder(tmp_path):
    """Custom json keys are relative to data_root unless data_prefix says
    otherwise; a known dataset keeps its image folder."""
    root = tmp_path / 'mine'
    _make_fgvc(root / 'photos', per_split=(('train', 1), ))
    (root / 'photos/train.json').rename(root / 'train.json')
    ds = FGVC(str(root), 'mine', num_classes=3, data_prefix='photos')
    assert ds.get_data_info(0)['img_path'] == osp.join(
        str(root), 'photos', 'class0/train_0.jpg')
    with pytest.raises(ValueError, match=r"train\.json: 'class0/train_0\.jpg'"
                       r': image not found: .*/mine/class0/train_0\.jpg$'):
        FGVC(str(root), 'mine', num_classes=3)
