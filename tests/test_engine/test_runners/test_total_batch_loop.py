"""total_batch_size split by the config's train loop, under a stock
``Runner.from_cfg`` (no mmcvpt tool)."""
import glob
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from mmcvpt.engine.runners import split_total_batch
from tests.seg_fixtures import REPO, free_port

TOY_CONFIG = '''
custom_imports = dict(
    imports=['mmcvpt', 'tests.test_engine.test_runners.toy'],
    allow_failed_imports=False)
model = dict(type='ToyBatchModel')
model_wrapper_cfg = dict(type='CPUDistributedDataParallel')
total_batch_size = 8
train_dataloader = dict(
    batch_size='auto',
    num_workers=0,
    dataset=dict(type='ToyBatchDataset', length=32),
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'))
train_cfg = dict(type='TotalBatchIterBasedTrainLoop', max_iters=2)
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1))
custom_hooks = [dict(type='BatchRecorderHook')]
default_hooks = dict(checkpoint=None)
'''

# what a stock tools/train.py does (mmseg's, mmpretrain's, mim's): read the
# config, merge --cfg-options, Runner.from_cfg(cfg).train()
STOCK_SCRIPT = '''
import sys

import torch.distributed as dist
from mmengine.config import Config
from mmengine.runner import Runner

cfg = Config.fromfile(sys.argv[1])
cfg.work_dir = sys.argv[2]
cfg.launcher = 'pytorch'
# CPU only: mmengine's init_dist calls torch.cuda.set_device, so gloo is
# started here; the Runner skips its own start-up when a group exists
dist.init_process_group('gloo')
Runner.from_cfg(cfg).train()
dist.destroy_process_group()
'''


def toy_config(path, extra=''):
    path = Path(path)
    path.write_text(TOY_CONFIG + textwrap.dedent(extra))
    return path


def recorded_batches(work_dir, rank=0):
    with open(Path(work_dir) / f'batches_rank{rank}.json') as f:
        return json.load(f)


def log_text(work_dir):
    logs = glob.glob(str(Path(work_dir) / '*' / '*.log'))
    assert len(logs) == 1, logs
    return Path(logs[0]).read_text()


def run_two_processes(tmp_path):
    """The toy config through the stock script on 2 gloo processes;
    returns (CompletedProcess, work_dir)."""
    cfg = toy_config(tmp_path / 'toy.py')
    script = tmp_path / 'stock_train.py'
    script.write_text(STOCK_SCRIPT)
    work = tmp_path / 'work'
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS='1')
    proc = subprocess.run([
        sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
        f'--master_port={free_port()}',
        str(script),
        str(cfg),
        str(work)
    ],
                          cwd=REPO,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=180)
    return proc, work


def _train(tmp_path, options=None, extra=''):
    """The toy config on one process, in this interpreter; returns the
    runner after training."""
    cfg = Config.fromfile(toy_config(tmp_path / 'toy.py', extra))
    cfg.merge_from_dict(options or {})
    cfg.work_dir = str(tmp_path / 'work')
    cfg.experiment_name = f'toy_{tmp_path.name}'
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def test_two_processes_split_the_total(tmp_path):
    proc, work = run_two_processes(tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    # total 8 over 2 processes: each fed its model 4 samples per iteration
    assert recorded_batches(work, 0) == [4, 4]
    assert recorded_batches(work, 1) == [4, 4]
    line = 'total batch 8 = 4 per process x 2 processes x 1 accumulation'
    assert out.count(line) == 1  # once, from rank 0


def test_one_process_takes_the_whole_total(tmp_path):
    runner = _train(tmp_path)
    assert recorded_batches(runner.work_dir) == [8, 8]
    # the config stays 'auto': dumped, it splits again on any count
    assert runner.cfg.train_dataloader.batch_size == 'auto'
    assert 'total batch 8 = 8 per process x 1 process x 1 accumulation' in \
        log_text(runner.work_dir)


def test_explicit_batch_size_is_kept(tmp_path):
    """--cfg-options train_dataloader.batch_size=2 on one process trains
    with 2, also when 2 is what a config once wrote (not 2 -> 16)."""
    runner = _train(tmp_path, {'train_dataloader.batch_size': 2})
    assert recorded_batches(runner.work_dir) == [2, 2]
    assert ('WARNING - batch size set explicitly: total batch 2 = 2 per '
            'process x 1 process x 1 accumulation, not total_batch_size=8 '
            "(leave train_dataloader.batch_size='auto' to keep the total on "
            'any process count)') in log_text(runner.work_dir)
    # the shipped headline config leaves the split to its loop: an explicit
    # 2 is not mistaken for the file's number
    head = Config.fromfile(REPO / 'configs/cvpt_vitb_ade20k.py')
    assert head.train_dataloader.batch_size == 'auto'
    head.merge_from_dict({'train_dataloader.batch_size': 2})
    split = split_total_batch(head.total_batch_size, 2, 1)
    assert (split.batch_size, split.total, split.explicit) == (2, 2, True)


def test_accumulation_counts_in_the_total(tmp_path):
    runner = _train(
        tmp_path, {
            'optim_wrapper.accumulative_counts': 2,
            'train_cfg.max_iters': 4,
            'auto_scale_lr': dict(enable=True, base_batch_size=8)
        })
    assert recorded_batches(runner.work_dir) == [4, 4, 4, 4]  # 8 / 2
    log = log_text(runner.work_dir)
    assert 'total batch 8 = 4 per process x 1 process x 2 accumulation; ' \
        'max_iters=4 counts batches: 2 optimizer steps' in log
    # the total equals the lr's base batch: no scaling (mmengine alone
    # counts batch_size x processes = 4 and would halve the lr)
    assert 'auto_scale_lr: lr x 1 (total batch 8 / base_batch_size 8)' in log
    assert runner.optim_wrapper.get_lr()['lr'] == [0.1]


def test_epoch_based_loop(tmp_path):
    extra = '''
    train_cfg = dict(type='TotalBatchEpochBasedTrainLoop', max_epochs=1)
    total_batch_size = 16
    '''
    runner = _train(tmp_path, extra=extra)
    assert recorded_batches(runner.work_dir) == [16, 16]  # 32 samples


@pytest.mark.parametrize('total,world,accum,valid', [
    (16, 3, 1, 'valid process counts: 1, 2, 4, 8, 16'),
    (16, 4, 8, 'valid process counts: 1, 2'),
    (16, 1, 3, 'valid accumulative_counts: 1, 2, 4, 8, 16'),
])
def test_total_that_does_not_divide(total, world, accum, valid):
    with pytest.raises(ValueError) as e:
        split_total_batch(total, 'auto', world, accum)
    processes = f'{world} process' + ('es' if world > 1 else '')
    assert str(e.value) == (
        f'total_batch_size={total} does not divide over {processes} x '
        f'{accum} accumulation (optim_wrapper.accumulative_counts); {valid}; '
        f'or set total_batch_size to a multiple of {world * accum} (and '
        'scale the lr to match)')


@pytest.mark.parametrize('total,batch,accum,message', [
    (None, 'auto', 1, "train_dataloader.batch_size='auto' needs "
     'total_batch_size (images per optimizer step over all processes); set '
     'total_batch_size=N or an integer batch_size per process'),
    (16, None, 1, 'train_dataloader.batch_size must be a positive integer '
     "or 'auto', got None"),
    (16, 0, 1, 'train_dataloader.batch_size must be a positive integer or '
     "'auto', got 0"),
    (2.5, 'auto', 1, 'total_batch_size must be a positive integer, got 2.5'),
    (16, 'auto', 0, 'optim_wrapper.accumulative_counts must be a positive '
     'integer, got 0'),
])
def test_bad_values(total, batch, accum, message):
    with pytest.raises(ValueError) as e:
        split_total_batch(total, batch, 1, accum)
    assert str(e.value) == message


def test_plain_mmengine_without_total():
    split = split_total_batch(None, 3, 4)
    assert (split.batch_size, split.total, split.message) == (3, None, '')


def test_another_loop_type_stops(tmp_path):
    """A config that replaces the loop cannot train with a silently
    different total: the dataloader meets 'auto' and stops."""
    extra = "train_cfg = dict(type='IterBasedTrainLoop', max_iters=2)\n"
    with pytest.raises(
            ValueError,
            match='^batch_size should be a positive integer value, but got '
            'batch_size=auto$'):
        _train(tmp_path, extra=extra)
