import logging
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.runner import Runner

from mmcvpt.launch import apply_total_batch_size, resolve_total_batch_size
from tests.seg_fixtures import (REPO, dist_train, make_sample, run_tool,
                                tiny_config)

# config: (total batch, per-GPU batch written in the file)
REAL = {
    'configs/cvpt_vitb_ade20k.py': (16, 2),  # 8 GPUs x 2, as the paper
    'configs/cvpt_vitl_setr-pup_ade20k.py': (16, 2),
    'configs/vpt_vitb_ade20k.py': (16, 2),
    'configs/vtab1k/cvpt_vitb_vtab1k-dtd.py': (64, 64),  # 1 GPU
    'configs/vtab1k/vpt_vitb_vtab1k-sun397.py': (16, 16),
    'configs/fgvc/cvpt_vitb_fgvc-CUB_200_2011.py': (32, 32),
    'configs/demo/cvpt_vitb_ade20k-sample.py': (2, 2),  # 1 CPU process
}


def _cfg(total=16, batch=2, **extra):
    return Config(
        dict(
            total_batch_size=total,
            train_dataloader=dict(batch_size=batch),
            **extra))


@pytest.mark.parametrize('world_size,per_process', [(1, 16), (2, 8), (8, 2)])
def test_total_is_split(world_size, per_process):
    cfg = _cfg()
    lines = apply_total_batch_size(cfg, world_size)
    assert cfg.train_dataloader.batch_size == per_process
    assert cfg.total_batch_size == 16
    assert lines[0].startswith(f'total batch 16 = {per_process} per process')


@pytest.mark.parametrize('total,world_size', [(16, 3), (16, 32), (2, 8)])
def test_total_that_does_not_divide(total, world_size):
    cfg = _cfg(total, 1)
    with pytest.raises(
            ValueError,
            match=rf'^total_batch_size={total} does not divide over '
            rf'{world_size} processes; use a process count that divides it '
            r'\(1, 2.*\) or pass --cfg-options total_batch_size=<a multiple '
            rf'of {world_size}>'):
        apply_total_batch_size(cfg, world_size)
    assert cfg.train_dataloader.batch_size == 1  # untouched


@pytest.mark.parametrize('total', [None, 0, 2.5])
def test_missing_or_invalid_total(total):
    cfg = Config(dict(train_dataloader=dict(batch_size=3)))
    if total is not None:
        cfg.total_batch_size = total
        with pytest.raises(ValueError, match='positive integer'):
            apply_total_batch_size(cfg, 2)
    else:  # plain mmengine: batch_size is per process
        assert apply_total_batch_size(cfg, 2) == []
    assert cfg.train_dataloader.batch_size == 3


@pytest.mark.parametrize('path', sorted(REAL))
def test_real_configs_keep_their_total(path):
    total, written = REAL[path]
    assert Config.fromfile(REPO / path).train_dataloader.batch_size == written
    for world_size in (1, 2, 8):
        if total % world_size:  # the 1-process demo config on 8
            continue
        cfg = Config.fromfile(REPO / path)
        apply_total_batch_size(cfg, world_size)
        assert cfg.train_dataloader.batch_size * world_size == total


def test_explicit_batch_size_is_kept_and_said():
    path = REPO / 'configs/vtab1k/cvpt_vitb_vtab1k-dtd.py'  # total 64
    cfg = Config.fromfile(path)
    cfg.merge_from_dict({'train_dataloader.batch_size': 4})
    lines = apply_total_batch_size(cfg, 2)
    assert cfg.train_dataloader.batch_size == 4 and cfg.total_batch_size == 8
    assert lines == [
        'batch size set explicitly: train_dataloader.batch_size=4 per '
        "process x 2 processes = total batch 8, not the config's "
        'total_batch_size=64 (set total_batch_size instead to keep the total '
        'on any process count)'
    ]
    # an explicit value that agrees with the total is just the split
    cfg = Config.fromfile(path)
    cfg.merge_from_dict({'train_dataloader.batch_size': 8})
    apply_total_batch_size(cfg, 8)
    assert cfg.train_dataloader.batch_size == 8 and cfg.total_batch_size == 64
    # both set, contradicting each other
    cfg = Config.fromfile(path)
    cfg.merge_from_dict({
        'train_dataloader.batch_size': 4,
        'total_batch_size': 32
    })
    with pytest.raises(
            ValueError,
            match=r'batch_size=4 x 2 processes '
            r'contradicts total_batch_size=32'):
        apply_total_batch_size(cfg, 2)
    # a new total alone is split as usual
    cfg = Config.fromfile(path)
    cfg.merge_from_dict({'total_batch_size': 128})
    apply_total_batch_size(cfg, 8)
    assert cfg.train_dataloader.batch_size == 16


def _scaled_lr(cfg, world_size, lr=1e-3):
    """The lr after mmengine's own ``Runner.scale_lr``."""
    param = torch.nn.Parameter(torch.zeros(1))
    wrapper = OptimWrapper(torch.optim.SGD([param], lr=lr))
    runner = SimpleNamespace(
        _train_dataloader=cfg.train_dataloader,
        world_size=world_size,
        logger=logging.getLogger('test_batch'),
        param_schedulers=None)
    Runner.scale_lr(runner, wrapper, cfg.auto_scale_lr)
    return wrapper.optimizer.param_groups[0]['lr']


def test_auto_scale_lr_applies_once():
    path = REPO / 'configs/vtab1k/cvpt_vitb_vtab1k-dtd.py'  # total 64
    lrs = []
    for world_size in (1, 2, 8):
        cfg = Config.fromfile(path)
        cfg.merge_from_dict({'auto_scale_lr.enable': True})
        lines = apply_total_batch_size(cfg, world_size)
        # no base_batch_size: the config file's total, the lr's own batch
        assert cfg.auto_scale_lr.base_batch_size == 64
        assert lines[-1].startswith('auto_scale_lr: lr x 1 (total batch 64')
        lrs.append(_scaled_lr(cfg, world_size))
    assert lrs == [1e-3] * 3  # same total, same lr, on any process count
    cfg = Config.fromfile(path)
    cfg.merge_from_dict({
        'auto_scale_lr.enable': True,
        'total_batch_size': 128
    })
    apply_total_batch_size(cfg, 8)
    assert _scaled_lr(cfg, 8) == pytest.approx(2e-3)  # 128 / 64, once


def test_resolve_for_tools(monkeypatch, capsys):
    cfg = _cfg(launcher='none')
    resolve_total_batch_size(cfg, ('test_dataloader', ))  # not training
    assert cfg.train_dataloader.batch_size == 2
    resolve_total_batch_size(cfg, ('train_dataloader', 'val_dataloader'))
    assert cfg.train_dataloader.batch_size == 16
    # before mmengine starts the process group: the launcher's environment
    monkeypatch.setenv('WORLD_SIZE', '8')
    monkeypatch.setenv('RANK', '0')
    cfg = _cfg(launcher='pytorch', total=32)
    resolve_total_batch_size(cfg, ('train_dataloader', ))
    assert cfg.train_dataloader.batch_size == 4
    cfg = _cfg(launcher='pytorch', total=12)
    with pytest.raises(SystemExit) as e:
        resolve_total_batch_size(cfg, ('train_dataloader', ))
    assert str(e.value.code).startswith(
        'error: total_batch_size=12 does not divide over 8 processes')
    monkeypatch.setenv('RANK', '3')  # one line, from rank 0 only
    with pytest.raises(SystemExit) as e:
        resolve_total_batch_size(cfg, ('train_dataloader', ))
    assert e.value.code == 1



def test_dist_train_checks_the_total_on_every_process(tmp_path):
    """Two real processes: the split sees world size 2, before any data is
    read or any model is built."""
    sample = make_sample(tmp_path / 'samples')
    cfg = tiny_config(tmp_path / 'tiny.py', sample)
    proc = dist_train(cfg, tmp_path / 'work', '--cfg-options',
                      'total_batch_size=3', check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert 'error: total_batch_size=3 does not divide over 2 processes; use ' \
        'a process count that divides it (1, 3)' in out
    assert not (tmp_path / 'work').exists()  # stopped before the Runner
