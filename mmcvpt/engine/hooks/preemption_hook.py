"""Preemption: on SIGTERM/SIGUSR1, checkpoint and stop the training loop.

Slurm preempts (and requeues) a job with SIGTERM, and sends the signal a
user asks for before the time limit (``sbatch --signal=USR1@90``).
"""
import os
import os.path as osp
import signal
import threading

import torch
from mmengine.dist import all_reduce, get_world_size, is_main_process
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS
from mmengine.runner import EpochBasedTrainLoop

from .rng_state_hook import RNGStateHook

# Written in the work_dir beside mmengine's ``last_checkpoint`` when a run
# stops for a signal: the checkpoint that the same command resumes from
# (mmcvpt's tools/train.py does so without --resume). Removed when the
# training completes.
PREEMPTED_FILE = 'preempted_checkpoint'
SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


@HOOKS.register_module()
class PreemptionHook(Hook):
    """On SIGTERM or SIGUSR1, finish the iteration, checkpoint, and stop.

    Every rank finishes the current iteration (epoch, for epoch-based
    loops: mmengine resumes those at epoch boundaries only); the ranks agree
    on the stop with a one-integer all-reduce, as the signal may reach only
    some of them. The checkpoint goes through the run's ``CheckpointHook``
    (``last_checkpoint``, ``max_keep_ckpts``), so that :class:`RNGStateHook`
    stores every rank's RNG states and ``PEFTCheckpointHook`` writes the
    ``*_peft.pth`` beside it; a checkpoint that hook has just saved is not
    written twice. The loop then ends through its ``stop_training`` flag
    (mmengine's own early stop), so ``runner.train()`` returns normally.
    :attr:`signal` tells the caller (tools/train.py exits with
    ``128 + signal``); the run's previous handlers are back after training.

    The handlers are installed when training starts and only act in the
    process that installed them: a forked DataLoader worker ignores the
    signal (its parent stops it).
    """

    # After CheckpointHook (VERY_LOW, 90) has saved this iteration's
    # checkpoint, before PEFTCheckpointHook (LOWEST, 100) looks for it.
    priority = 95

    def __init__(self):
        self.signal = None  # the signal the run stopped for
        self._received = 0
        self._pid = None
        self._previous = {}

    def _handle(self, signum, frame):
        if os.getpid() == self._pid:  # not in a forked DataLoader worker
            self._received = signum

    def before_train(self, runner) -> None:
        self.signal, self._received = None, 0
        if threading.current_thread() is not threading.main_thread():
            print_log('PreemptionHook: not in the main thread, signals are '
                      'not handled', logger='current')
            return
        self._pid = os.getpid()
        for signum in SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)

    def after_train(self, runner) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}
        if self.signal is None and is_main_process() and osp.isfile(
                osp.join(runner.work_dir, PREEMPTED_FILE)):
            os.remove(osp.join(runner.work_dir, PREEMPTED_FILE))

    def _agreed_signal(self) -> int:
        """The signal any rank received (0: none): one all-reduce."""
        if get_world_size() == 1:
            return self._received
        flag = torch.tensor(self._received, dtype=torch.int64)
        all_reduce(flag, op='max')
        return int(flag)

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None) -> None:
        if not isinstance(runner.train_loop, EpochBasedTrainLoop):
            self._stop_if_signalled(runner, by_epoch=False)

    def after_train_epoch(self, runner) -> None:
        if isinstance(runner.train_loop, EpochBasedTrainLoop):
            self._stop_if_signalled(runner, by_epoch=True)

    def _stop_if_signalled(self, runner, by_epoch: bool) -> None:
        signum = self._agreed_signal()
        if not signum:
            return
        self.signal = signal.Signals(signum)
        runner.train_loop.stop_training = True
        saved = self._save(runner, by_epoch)
        if is_main_process():
            if saved:
                with open(osp.join(runner.work_dir, PREEMPTED_FILE),
                          'w') as f:
                    f.write(saved)
            at = f'epoch {runner.epoch + 1}' if by_epoch else \
                f'iter {runner.iter + 1}'
            print_log(
                f'PreemptionHook: {self.signal.name}: stopped after {at}; '
                + (f'saved {saved}' if saved else 'no checkpoint saved'),
                logger='current')

    def _save(self, runner, by_epoch: bool):
        """Save through CheckpointHook unless it has just saved; returns the
        checkpoint's path (None without a CheckpointHook that fits)."""
        hook = next(
            (h for h in runner.hooks if isinstance(h, CheckpointHook)), None)
        if hook is None or hook.by_epoch != by_epoch:
            # An iteration-named checkpoint at an epoch end (or the reverse)
            # would resume at the wrong step.
            return None
        step = runner.epoch + 1 if by_epoch else runner.iter + 1
        path = hook.file_backend.join_path(hook.out_dir,
                                           hook.filename_tmpl.format(step))
        if getattr(hook, 'last_ckpt', None) != path:
            for rng in runner.hooks:
                if isinstance(rng, RNGStateHook):
                    # A collective: every rank's state, for rank 0 to save.
                    rng._gather()
            hook._save_checkpoint(runner)
        return path
