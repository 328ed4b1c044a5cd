import random

import numpy as np
import torch
import torch.nn as nn
from mmengine.evaluator import BaseMetric, Evaluator
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

from mmcvpt.engine.hooks import RNGStateHook


class _NoisyDataset(Dataset):
    """Augmentation draws from numpy and python's global generators."""

    def __len__(self):
        return 8

    def __getitem__(self, i):
        x = torch.full((4, ), float(i)) + torch.from_numpy(
            np.random.randn(4).astype(np.float32)) * random.random()
        return dict(inputs=x, labels=torch.tensor(i % 2))


class _DropoutModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 2))

    def forward(self, inputs, labels, mode='tensor'):
        logits = self.net(inputs)
        if mode == 'loss':
            return dict(loss=nn.functional.cross_entropy(logits, labels))
        return [dict(pred=logits.argmax(1), gt=labels)]


class _Accuracy(BaseMetric):

    def process(self, data_batch, data_samples):
        for s in data_samples:
            self.results.append((s['pred'] == s['gt']).float().mean())

    def compute_metrics(self, results):
        return dict(acc=float(sum(results) / len(results)))


class _LossRecorder(Hook):

    def __init__(self):
        self.losses = {}

    def after_train_iter(self, runner, batch_idx, data_batch, outputs):
        self.losses[runner.iter + 1] = outputs['loss'].item()


def _run(work_dir, max_iters, hooks, resume_from=None, num_workers=0,
         dist=False):
    recorder = _LossRecorder()
    torch.manual_seed(0)  # same initial weights in every run
    loader = dict(
        dataset=_NoisyDataset(),
        batch_size=2,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        sampler=dict(type='InfiniteSampler', shuffle=True),
        collate_fn=dict(type='default_collate'))
    runner = Runner(
        model=_DropoutModel(),
        work_dir=str(work_dir),
        train_dataloader=loader,
        val_dataloader=dict(
            loader, sampler=dict(type='DefaultSampler', shuffle=False)),
        val_evaluator=Evaluator(_Accuracy()),
        train_cfg=dict(by_epoch=False, max_iters=max_iters, val_interval=2),
        val_cfg=dict(),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=2,
                            by_epoch=False)),
        custom_hooks=hooks + [recorder],
        randomness=dict(seed=0, deterministic=True, diff_rank_seed=dist),
        launcher='pytorch' if dist else 'none',
        # read from cfg only; mmengine's DDP wrapper needs CUDA device ids
        cfg=dict(model_wrapper_cfg=dict(
            type='CPUDistributedDataParallel')) if dist else None,
        load_from=resume_from,
        resume=resume_from is not None,
        default_scope='mmengine')
    runner.train()
    # Persistent workers would otherwise live until the interpreter exits,
    # whose clean-up waits 5 s for each of them.
    for dataloader in (runner.train_dataloader, runner.val_dataloader):
        if getattr(dataloader, '_iterator', None) is not None:
            dataloader._iterator._shutdown_workers()
    return recorder.losses


def test_resume_is_exact(tmp_path):
    full = _run(tmp_path / 'full', 4, [RNGStateHook()])
    part = _run(tmp_path / 'part', 2, [RNGStateHook()])
    assert part == {1: full[1], 2: full[2]}
    ckpt = torch.load(tmp_path / 'part/iter_2.pth', weights_only=True)
    assert len(ckpt['rng_state']) == 1  # one state per process
    resumed = _run(
        tmp_path / 'resumed',
        4, [RNGStateHook()],
        resume_from=str(tmp_path / 'part/iter_2.pth'))
    assert sorted(resumed) == [3, 4]
    assert resumed[3] == full[3] and resumed[4] == full[4]


def test_without_the_hook_resume_diverges(tmp_path):
    # The control: proves the comparison above can fail.
    full = _run(tmp_path / 'full', 4, [])
    _run(tmp_path / 'part', 2, [])
    resumed = _run(
        tmp_path / 'resumed',
        4, [],
        resume_from=str(tmp_path / 'part/iter_2.pth'))
    assert (resumed[3], resumed[4]) != (full[3], full[4])


def test_resume_is_exact_with_persistent_workers(tmp_path):
    """Augmentation draws in persistent worker processes. mmengine seeds
    each worker from the run's seed, and its resume replay fetches the
    skipped batches, so the workers' generators are where the uninterrupted
    run's were; the hook restores the main process (dropout)."""
    full = _run(tmp_path / 'full', 4, [RNGStateHook()], num_workers=2)
    part = _run(tmp_path / 'part', 2, [RNGStateHook()], num_workers=2)
    assert part == {1: full[1], 2: full[2]}
    resumed = _run(
        tmp_path / 'resumed',
        4, [RNGStateHook()],
        resume_from=str(tmp_path / 'part/iter_2.pth'),
        num_workers=2)
    assert sorted(resumed) == [3, 4]
    assert resumed[3] == full[3] and resumed[4] == full[4]
    # The workers' draws reach the loss: in the main process they differ.
    in_main = _run(tmp_path / 'in_main', 4, [RNGStateHook()])
    assert (in_main[3], in_main[4]) != (full[3], full[4])


def _same_rng_state(a, b):
    return (torch.equal(a['torch'], b['torch']) and a['numpy'] == b['numpy']
            and a['python'] == b['python'])


def _two_rank_worker(rank, port, out):
    """One of 2 gloo CPU processes: an uninterrupted 4-iteration run, then
    a run resumed from its iteration-2 checkpoint; every rank writes its
    losses and its final RNG state."""
    import os

    import torch.distributed as torch_dist

    from mmcvpt.engine.hooks.rng_state_hook import get_rng_state
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port),
                      RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE='2')
    torch_dist.init_process_group('gloo', rank=rank, world_size=2)
    try:
        result = {}
        for name, resume in (('full', None), ('resumed', 'full/iter_2.pth')):
            losses = _run(out / name, 4, [RNGStateHook()],
                          resume_from=resume and str(out / resume),
                          dist=True)
            result[name] = dict(losses=losses, rng_state=get_rng_state())
            torch_dist.barrier()
        torch.save(result, out / f'rank{rank}.pth')
    finally:
        torch_dist.destroy_process_group()


def test_two_process_resume_restores_every_ranks_state(tmp_path):
    """2 gloo CPU processes, seeded per rank (diff_rank_seed): the resumed
    run draws, on each rank, the dropout masks and augmentations of the
    uninterrupted run: its per-rank losses and final RNG states are that
    run's, and its checkpoint holds the weights both ranks' gradients
    made."""
    import torch.multiprocessing as mp

    from tests.seg_fixtures import free_port
    mp.spawn(_two_rank_worker, args=(free_port(), tmp_path), nprocs=2)
    ranks = [torch.load(tmp_path / f'rank{r}.pth', weights_only=True)
             for r in (0, 1)]
    for r in ranks:
        full, resumed = r['full'], r['resumed']
        assert sorted(full['losses']) == [1, 2, 3, 4]
        assert sorted(resumed['losses']) == [3, 4]
        assert [resumed['losses'][i] for i in (3, 4)] == \
            [full['losses'][i] for i in (3, 4)]
        assert _same_rng_state(resumed['rng_state'], full['rng_state'])
    # Each rank drew its own numbers: rank 1's state is no copy of rank 0's.
    assert ranks[0]['full']['losses'] != ranks[1]['full']['losses']
    assert not _same_rng_state(ranks[0]['full']['rng_state'],
                               ranks[1]['full']['rng_state'])
    start = torch.load(tmp_path / 'full/iter_2.pth', weights_only=True)
    assert len(start['rng_state']) == 2  # one state per process
    assert not _same_rng_state(*start['rng_state'])
    end = [torch.load(tmp_path / f'{name}/iter_4.pth', weights_only=True)
           for name in ('full', 'resumed')]
    for rank in (0, 1):
        assert _same_rng_state(end[0]['rng_state'][rank],
                               end[1]['rng_state'][rank])
    weights = end[0]['state_dict']
    assert [k for k, v in end[1]['state_dict'].items()
            if not torch.equal(v, weights[k])] == []
