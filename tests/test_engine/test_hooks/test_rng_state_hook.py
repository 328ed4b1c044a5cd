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


def _run(work_dir, max_iters, hooks, resume_from=None, num_workers=0):
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
        randomness=dict(seed=0, deterministic=True),
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
