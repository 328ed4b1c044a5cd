import glob
import os
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from .checkpoint import (PEFT_SUFFIX, peft_entries, peft_path,
                         save_peft_checkpoint)
from .state import LOADED_CONFIG_KEY


# Message-hub entries where CheckpointHook names what it has just saved.
CKPT_KEYS = ('last_ckpt', 'best_ckpt')


def _companion(peft_file: str) -> str:
    """``iter_4_peft.pth`` -> ``iter_4.pth``."""
    return peft_file[:-len(PEFT_SUFFIX)] + '.pth'


@HOOKS.register_module()
class PEFTCheckpointHook(Hook):
    """Write ``<checkpoint>_peft.pth`` beside every checkpoint mmengine saves.

    The PEFT file has only the tensors its pretrained backbone file cannot
    restore (see :mod:`mmcvpt.peft.checkpoint`); ``load_from``,
    ``tools/test.py``, mmseg's/mmpretrain's Inferencers and ``init_model``
    load it like a full checkpoint. A PEFT file goes when CheckpointHook
    removes its checkpoint (``max_keep_ckpts``, a replaced best checkpoint).
    When the runner loads a PEFT file (``load_from``, ``tools/test.py``),
    the hook tells the backbone the config in use, so that the pretrained
    file is also looked for relative to it.
    """

    priority = 'LOWEST'  # after CheckpointHook (VERY_LOW) has saved

    def __init__(self):
        self._last = {}
        self._written = []

    def before_train(self, runner) -> None:
        # On resume the message hub already names the previous checkpoint,
        # and CheckpointHook goes on rotating the earlier files.
        self._last = {k: runner.message_hub.get_info(k) for k in CKPT_KEYS}
        self._written = [
            f for f in sorted(
                glob.glob(osp.join(runner.work_dir, '*' + PEFT_SUFFIX)))
            if osp.isfile(_companion(f))
        ]

    def after_load_checkpoint(self, runner, checkpoint) -> None:
        config = getattr(runner.cfg, 'filename', None)
        for entry in peft_entries(checkpoint.get('state_dict') or {}).values():
            if config:
                entry[LOADED_CONFIG_KEY] = config

    def _model(self, runner):
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    def _save_if_new(self, runner) -> None:
        for key in CKPT_KEYS:
            last = runner.message_hub.get_info(key)
            if last is not None and last != self._last.get(key):
                self._last[key] = last
                if is_main_process():
                    self._save(runner, last)

    def _save(self, runner, last: str) -> None:
        model = self._model(runner)
        meta = dict(
            dataset_meta=getattr(runner.train_dataloader.dataset, 'metainfo',
                                 None),
            iter=runner.iter,
            epoch=runner.epoch)
        path = peft_path(last)
        save_peft_checkpoint(model, path, meta,
                             getattr(runner.cfg, 'filename', None))
        if path not in self._written:
            self._written.append(path)
        self._remove_orphans()

    def _remove_orphans(self) -> None:
        """PEFT files whose checkpoint CheckpointHook has removed."""
        keep = []
        for path in self._written:
            if osp.isfile(_companion(path)):
                keep.append(path)
            elif osp.isfile(path):
                os.remove(path)
        self._written = keep

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None) -> None:
        self._save_if_new(runner)

    def after_train_epoch(self, runner) -> None:
        self._save_if_new(runner)

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._save_if_new(runner)  # best checkpoints
