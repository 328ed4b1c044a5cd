"""The shipped configs' total batch, tools/train.py's early check and
auto_scale_lr (the split itself: tests/test_engine/test_runners)."""
import logging
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.runner import Runner

from mmcvpt.engine.runners import resolve_batch_size
from mmcvpt.engine.runners.total_batch_loop import apply_total_batch
from mmcvpt.launch import check_total_batch_size
from tests.seg_fixtures import REPO, dist_train, make_sample, tiny_config

# config: (total batch, its train loop)
REAL = {
    'configs/cvpt_vitb_ade20k.py': (16, 'TotalBatchIterBasedTrainLoop'),
    'configs/cvpt_vitl_setr-pup_ade20k.py':
    (16, 'TotalBatchIterBasedTrainLoop'),
    'configs/vpt_vitb_ade20k.py': (16, 'TotalBatchIterBasedTrainLoop'),
    'configs/cityscapes/cvpt_vitb_cityscapes.py':
    (8, 'TotalBatchIterBasedTrainLoop'),
    'configs/pascal_context/cvpt_vitb_pascal-context-59.py':
    (16, 'TotalBatchIterBasedTrainLoop'),
    'configs/vtab1k/cvpt_vitb_vtab1k-dtd.py':
    (64, 'TotalBatchEpochBasedTrainLoop'),
    'configs/vtab1k/vpt_vitb_vtab1k-sun397.py':
    (16, 'TotalBatchEpochBasedTrainLoop'),
    'configs/fgvc/cvpt_vitb_fgvc-CUB_200_2011.py':
    (32, 'TotalBatchEpochBasedTrainLoop'),
    'configs/demo/cvpt_vitb_ade20k-sample.py':
    (2, 'TotalBatchIterBasedTrainLoop'),
    'configs/demo/cvpt_vitb_vtab1k-sample.py':
    (8, 'TotalBatchEpochBasedTrainLoop'),
}


@pytest.mark.parametrize('path', sorted(REAL))
def test_real_configs_leave_the_split_to_their_loop(path):
    total, loop = REAL[path]
    cfg = Config.fromfile(REPO / path)
    assert cfg.train_cfg.type == loop
    assert cfg.train_dataloader.batch_size == 'auto'
    assert cfg.total_batch_size == total
    assert cfg.auto_scale_lr.base_batch_size == total  # the lr's batch
    for world_size in (1, 2, 8):
        if total % world_size:  # the 2-image demo on 8
            continue
        split = resolve_batch_size(cfg, world_size)
        assert split.batch_size * world_size == total
    cfg.launcher = 'none'
    check_total_batch_size(cfg, ('train_dataloader', ))  # tools/train.py
    # 24 GB, one GPU: the paper's 16 images per step as 2 x 8 accumulated
    cfg.merge_from_dict({'optim_wrapper.accumulative_counts': 8})
    if total % 8 == 0:
        assert resolve_batch_size(cfg, 1).batch_size == total // 8


def test_tool_checks_without_changing_the_config(monkeypatch):
    """tools/train.py only checks: the loop splits (once)."""
    cfg = Config(
        dict(
            launcher='none',
            total_batch_size=16,
            train_dataloader=dict(batch_size='auto'),
            train_cfg=dict(type='TotalBatchIterBasedTrainLoop')))
    check_total_batch_size(cfg, ('train_dataloader', 'val_dataloader'))
    assert cfg.train_dataloader.batch_size == 'auto'
    assert cfg.total_batch_size == 16
    check_total_batch_size(cfg, ('test_dataloader', ))  # not training
    # before mmengine starts the process group: the launcher's environment
    monkeypatch.setenv('WORLD_SIZE', '3')
    monkeypatch.setenv('RANK', '0')
    cfg.launcher = 'pytorch'
    with pytest.raises(SystemExit) as e:
        check_total_batch_size(cfg, ('train_dataloader', ))
    assert e.value.code == (
        'error: total_batch_size=16 does not divide over 3 processes x 1 '
        'accumulation (optim_wrapper.accumulative_counts); valid process '
        'counts: 1, 2, 4, 8, 16; or set total_batch_size to a multiple of 3 '
        '(and scale the lr to match)')
    monkeypatch.setenv('RANK', '2')  # one line, from rank 0 only
    with pytest.raises(SystemExit) as e:
        check_total_batch_size(cfg, ('train_dataloader', ))
    assert e.value.code == 1


@pytest.mark.parametrize('train_cfg,named', [
    (dict(type='IterBasedTrainLoop'), "'IterBasedTrainLoop'"),
    (dict(by_epoch=True), 'by_epoch'),
])
def test_tool_stops_a_loop_that_does_not_split(train_cfg, named):
    """A user's config that replaces the loop: one line, not a run with
    another total (a stock runner stops at torch's 'batch_size=auto')."""
    cfg = Config.fromfile(REPO / 'configs/demo/cvpt_vitb_vtab1k-sample.py')
    cfg.launcher = 'none'
    cfg.train_cfg = train_cfg
    with pytest.raises(SystemExit) as e:
        check_total_batch_size(cfg, ('train_dataloader', ))
    assert e.value.code == (
        "error: train_dataloader.batch_size='auto' is split by train_cfg."
        "type='TotalBatchIterBasedTrainLoop' or "
        f"'TotalBatchEpochBasedTrainLoop', not {named}; use one of them or "
        'set train_dataloader.batch_size=8 (per process)')


def _scaled_lr(cfg, world_size, lr=1e-3):
    """The lr after the config's loop and mmengine's own
    ``Runner.scale_lr``."""
    param = torch.nn.Parameter(torch.zeros(1))
    wrapper = OptimWrapper(torch.optim.SGD([param], lr=lr))
    runner = SimpleNamespace(
        cfg=cfg,
        _train_dataloader=cfg.train_dataloader,
        auto_scale_lr=cfg.auto_scale_lr,
        world_size=world_size,
        rank=0,
        logger=logging.getLogger('test_batch'),
        param_schedulers=None)
    apply_total_batch(runner, cfg.train_dataloader)
    Runner.scale_lr(runner, wrapper, runner.auto_scale_lr)
    return wrapper.optimizer.param_groups[0]['lr']


@pytest.mark.parametrize('world_size,accum', [(1, 1), (2, 1), (8, 1),
                                              (1, 8), (2, 4)])
def test_auto_scale_lr_applies_once(world_size, accum):
    """lr x total / base_batch_size, whatever the processes and the
    accumulation."""
    path = REPO / 'configs/vtab1k/cvpt_vitb_vtab1k-dtd.py'  # total 64
    cfg = Config.fromfile(path)
    cfg.merge_from_dict({
        'auto_scale_lr.enable': True,
        'optim_wrapper.accumulative_counts': accum
    })
    assert _scaled_lr(cfg, world_size) == pytest.approx(1e-3)
    cfg = Config.fromfile(path)
    cfg.merge_from_dict({
        'auto_scale_lr.enable': True,
        'optim_wrapper.accumulative_counts': accum,
        'total_batch_size': 128
    })
    assert _scaled_lr(cfg, world_size) == pytest.approx(2e-3)  # 128 / 64


def test_dist_train_checks_the_total_on_every_process(tmp_path):
    """Two real processes: the check sees world size 2, before any data is
    read or any model is built."""
    sample = make_sample(tmp_path / 'samples')
    cfg = tiny_config(tmp_path / 'tiny.py', sample)
    proc = dist_train(cfg, tmp_path / 'work', '--cfg-options',
                      'total_batch_size=3', 'train_dataloader.batch_size=auto',
                      check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert 'error: total_batch_size=3 does not divide over 2 processes x 1 ' \
        'accumulation (optim_wrapper.accumulative_counts); valid process ' \
        'counts: 1, 3; or set total_batch_size to a multiple of 2' in out
    assert not (tmp_path / 'work').exists()  # stopped before the Runner
