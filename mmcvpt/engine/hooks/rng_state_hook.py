"""Exact resume: checkpoints carry the random number generators' states."""
import random

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS
from mmengine.runner import IterBasedTrainLoop


def get_rng_state() -> dict:
    """torch (CPU and CUDA), numpy and python RNG states, as plain objects
    that load under ``torch.load(weights_only=True)``."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = dict(
        torch=torch.get_rng_state(),
        numpy=(kind, keys.tolist(), pos, has_gauss, gauss),
        python=random.getstate())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state['torch'])
    kind, keys, pos, has_gauss, gauss = state['numpy']
    np.random.set_state(
        (kind, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
    random.setstate(state['python'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


class _RestoreAfterReplay:
    """Dataloader iterator proxy: once mmengine's resume replay (``skip``
    batches) is over, set the RNG state, then step aside."""

    def __init__(self, loop, skip, state):
        self.loop, self.inner, self.skip, self.state = (
            loop, loop.dataloader_iterator, skip, state)

    def __iter__(self):
        return self

    def __next__(self):
        if self.skip == 0:
            set_rng_state(self.state)
            self.loop.dataloader_iterator = self.inner
        else:
            self.skip -= 1
        return next(self.inner)


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Save every rank's RNG states in checkpoints and restore them on resume.

    mmengine 0.10.7 stores none, so a resumed run draws different dropout
    masks and augmentations than the uninterrupted one. The state saved at a
    checkpoint is restored right before the next batch is fetched: after
    mmengine's dataloader replay for iteration-based loops, at the start of
    the epoch for epoch-based ones. Validation during training is kept from
    consuming the training RNG stream, so both runs see the same numbers.
    """

    priority = 'VERY_HIGH'  # before CheckpointHook (VERY_LOW) saves

    def __init__(self):
        self._pending = None
        self._before_val = None
        self._gathered = None

    # Runner.save_checkpoint runs on the master only, so every rank's state
    # is gathered beforehand, at points all ranks pass: when CheckpointHook
    # is about to save, and before validation (best-checkpoint saves).
    def _gather(self):
        if get_world_size() > 1:
            self._gathered = all_gather_object(get_rng_state())

    @staticmethod
    def _checkpoint_due(runner, by_epoch: bool) -> bool:
        """CheckpointHook's own save condition for this iteration/epoch."""
        hook = next((h for h in runner.hooks if isinstance(h, CheckpointHook)),
                    None)
        if hook is None or hook.by_epoch != by_epoch:
            return False
        if by_epoch:
            return hook.every_n_epochs(
                runner, hook.interval,
                hook.save_begin) or (hook.save_last
                                     and hook.is_last_train_epoch(runner))
        return hook.every_n_train_iters(
            runner, hook.interval,
            hook.save_begin) or (hook.save_last
                                 and hook.is_last_train_iter(runner))

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None) -> None:
        if get_world_size() > 1 and self._checkpoint_due(runner, False):
            self._gather()

    def after_train_epoch(self, runner) -> None:
        if get_world_size() > 1 and self._checkpoint_due(runner, True):
            self._gather()

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if get_world_size() == 1:
            checkpoint['rng_state'] = [get_rng_state()]
        elif self._gathered is not None:
            checkpoint['rng_state'] = self._gathered
            self._gathered = None

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        states = checkpoint.get('rng_state')
        if states is None:
            return
        if len(states) != get_world_size():
            print_log(
                f'RNGStateHook: checkpoint has RNG states of {len(states)} '
                f'processes, this run has {get_world_size()}; resuming '
                'with fresh random states (not bit-exact).',
                logger='current')
            return
        self._pending = states[get_rank()]

    def before_train_epoch(self, runner) -> None:
        if self._pending is None:
            return
        loop = runner.train_loop
        # Only a resumed run (load_from alone leaves the loop at 0).
        if isinstance(loop, IterBasedTrainLoop) and loop.iter > 0:
            loop.dataloader_iterator = _RestoreAfterReplay(
                loop, loop.iter, self._pending)
        elif loop.epoch > 0:
            set_rng_state(self._pending)
        self._pending = None

    def before_val(self, runner) -> None:
        self._before_val = get_rng_state()
        self._gather()

    def after_val(self, runner) -> None:
        if self._before_val is not None:
            set_rng_state(self._before_val)
            self._before_val = None
