import os
import signal

import torch
from mmengine.hooks import Hook

from mmcvpt.engine.hooks import PreemptionHook, RNGStateHook
from mmcvpt.engine.hooks.preemption_hook import PREEMPTED_FILE
from tests.test_engine.test_hooks.test_rng_state_hook import _run


class _SignalAt(Hook):
    """Sends ``signum`` to this process during iteration ``at``."""

    def __init__(self, at, signum=signal.SIGTERM):
        self.at, self.signum = at, signum

    def after_train_iter(self, runner, batch_idx, data_batch, outputs):
        if runner.iter + 1 == self.at:
            os.kill(os.getpid(), self.signum)


def test_signal_checkpoints_stops_and_resumes_exactly(tmp_path):
    """A plain Runner: SIGUSR1 in iteration 3 (no interval checkpoint
    there) stops the loop after it with iter_3.pth (RNG states included);
    resuming from it gives the uninterrupted run's losses."""
    full = _run(tmp_path / 'full', 6, [RNGStateHook()])
    hook = PreemptionHook()
    before = signal.getsignal(signal.SIGUSR1)
    part = _run(tmp_path / 'part', 6,
                [RNGStateHook(), hook, _SignalAt(3, signal.SIGUSR1)])
    assert hook.signal == signal.SIGUSR1
    assert signal.getsignal(signal.SIGUSR1) is before  # handlers restored
    assert part == {i: full[i] for i in (1, 2, 3)}
    ckpt = tmp_path / 'part/iter_3.pth'
    assert (tmp_path / 'part' / PREEMPTED_FILE).read_text() == str(ckpt)
    assert (tmp_path / 'part/last_checkpoint').read_text() == str(ckpt)
    saved = torch.load(ckpt, weights_only=True)
    assert saved['meta']['iter'] == 3 and len(saved['rng_state']) == 1
    assert not (tmp_path / 'part/iter_4.pth').exists()
    resumed = _run(tmp_path / 'part', 6, [RNGStateHook(), PreemptionHook()],
                   resume_from=str(ckpt))
    assert resumed == {i: full[i] for i in (4, 5, 6)}
    # A completed run forgets the preemption.
    assert not (tmp_path / 'part' / PREEMPTED_FILE).exists()


def test_no_second_save_at_an_interval_checkpoint(tmp_path):
    """SIGTERM in iteration 4, where CheckpointHook (interval 2) saves:
    the hook uses that checkpoint."""
    hook = PreemptionHook()
    part = _run(tmp_path, 6, [RNGStateHook(), hook, _SignalAt(4)])
    assert sorted(part) == [1, 2, 3, 4] and hook.signal == signal.SIGTERM
    assert (tmp_path / PREEMPTED_FILE).read_text() == \
        str(tmp_path / 'iter_4.pth')
    assert sorted(p.name for p in tmp_path.glob('*.pth')) == \
        ['iter_2.pth', 'iter_4.pth']


def test_without_a_signal_the_run_is_untouched(tmp_path):
    hook = PreemptionHook()
    losses = _run(tmp_path, 4, [RNGStateHook(), hook])
    assert sorted(losses) == [1, 2, 3, 4] and hook.signal is None
    assert not (tmp_path / PREEMPTED_FILE).exists()


def test_epoch_loop_stops_at_the_end_of_the_epoch(tmp_path):
    """mmengine resumes epoch-based loops at epoch boundaries only: a
    signal in the 2nd iteration of epoch 2 (of 4 iterations) stops after
    that epoch, with epoch_2.pth."""
    from mmengine.runner import Runner

    from tests.test_engine.test_hooks.test_rng_state_hook import (
        _DropoutModel, _NoisyDataset)
    hook = PreemptionHook()
    runner = Runner(
        model=_DropoutModel(),
        work_dir=str(tmp_path),
        train_dataloader=dict(
            dataset=_NoisyDataset(),
            batch_size=2,
            sampler=dict(type='DefaultSampler', shuffle=True),
            collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=True, max_epochs=3),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           interval=5)),
        custom_hooks=[RNGStateHook(), hook, _SignalAt(6)],
        default_scope='mmengine')
    runner.train()
    assert (runner.epoch, runner.iter, hook.signal) == \
        (2, 8, signal.SIGTERM)
    saved = torch.load(tmp_path / 'epoch_2.pth', weights_only=True)
    assert (saved['meta']['epoch'], saved['meta']['iter']) == (2, 8)
    assert (tmp_path / PREEMPTED_FILE).read_text() == \
        str(tmp_path / 'epoch_2.pth')
