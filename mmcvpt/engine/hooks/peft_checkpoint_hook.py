from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from ..peft_checkpoint import (check_peft_metadata, peft_metadata, peft_path,
                               save_peft_checkpoint)


@HOOKS.register_module()
class PEFTCheckpointHook(Hook):
    """Write ``<checkpoint>_peft.pth`` beside every checkpoint mmengine saves,
    and make ``load_from=<..._peft.pth>`` work.

    The PEFT file has only the tuned tensors (see
    :mod:`mmcvpt.engine.peft_checkpoint`). When one is loaded, its metadata
    is checked against the model and the backbone is initialised from its
    pretrained file before mmengine loads the tuned tensors.
    """

    priority = 'LOWEST'  # after CheckpointHook (VERY_LOW) has saved

    def __init__(self):
        self._last = None

    def before_train(self, runner) -> None:
        # On resume the message hub already names the previous checkpoint.
        self._last = runner.message_hub.get_info('last_ckpt')

    def _model(self, runner):
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    def _save_if_new(self, runner) -> None:
        last = runner.message_hub.get_info('last_ckpt')
        if last is None or last == self._last:
            return
        self._last = last
        if is_main_process():
            model = self._model(runner)
            meta = dict(
                peft=peft_metadata(model, runner.cfg.get('filename')),
                dataset_meta=getattr(runner.train_dataloader.dataset,
                                     'metainfo', None),
                iter=runner.iter,
                epoch=runner.epoch)
            save_peft_checkpoint(model, peft_path(last), meta)

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

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        meta = checkpoint.get('meta', {}).get('peft')
        if meta is None:
            return
        model = self._model(runner)
        check_peft_metadata(model, meta, str(runner.cfg.get('load_from')))
        # The frozen weights are not in the file: pretrained first (a no-op
        # if the runner initialised them already); mmengine then loads the
        # tuned tensors on top.
        model.backbone.init_weights()
