"""``init_cfg=dict(type='StrictPretrained', checkpoint=...)``: mmengine's
``Pretrained``, but the file must fit.

mmengine's ``PretrainedInit`` loads with ``strict=False`` and only warns
about missing and unexpected keys, which for a frozen backbone means random
tensors or another network, trained on silently. ``StrictPretrained``
refuses such a file in one line naming the likely cause (another family,
depth, layer scale, FFN type, a prefix) before anything is loaded; plain
``Pretrained`` keeps mmengine's lenient meaning.
"""
import re

from mmengine.model.weight_init import PretrainedInit
from mmengine.registry import WEIGHT_INITIALIZERS

from .key_mismatch import key_mismatch_causes
from .load_checks import check_state_fits
from .pretrained_file import (CheckpointError, load_pretrained_state,
                              missing_pretrained)
from .state import PEFT_META_KEY


def _file_state(checkpoint: str, prefix) -> dict:
    """The tensors ``PretrainedInit`` would load (memory-mapped if local).
    """
    if '://' not in checkpoint:
        return load_pretrained_state(checkpoint, prefix)
    # A URL: mmengine downloads (and caches) it; read it as it does.
    from mmengine.runner.checkpoint import (_load_checkpoint,
                                            _load_checkpoint_with_prefix)
    if prefix:
        return _load_checkpoint_with_prefix(prefix, checkpoint)
    ckpt = _load_checkpoint(checkpoint, map_location='cpu')
    state = ckpt.get('state_dict', ckpt)
    return {re.sub(r'^module\.', '', k): v for k, v in state.items()}


def is_strict_pretrained(init_cfg) -> bool:
    """Whether a module's ``init_cfg`` is one ``StrictPretrained`` dict."""
    return isinstance(init_cfg, dict) and \
        init_cfg.get('type') == 'StrictPretrained'


def _unused_by_config(vit, key: str) -> bool:
    """Tensors of a pretrained file that an mmpretrain ViT config leaves out
    on purpose: the class token without ``with_cls_token`` (mmpretrain also
    drops its position embedding), the final norm without ``final_norm``
    (SETR) and ln2 outside ``out_type='avg_featmap'``."""
    return (key == 'cls_token' and not vit.with_cls_token
            or key.startswith('ln1.') and not vit.final_norm
            or key.startswith('ln2.') and vit.out_type != 'avg_featmap')


def check_pretrained_keys(module, file_keys: list, where: str) -> None:
    """The file must provide every pretrained tensor of ``module`` and
    nothing else.

    A prompted backbone names its pretrained tensors (``PRETRAINED_PARTS``:
    not the prompts nor the cross-attention copies), and the file may have
    tensors its config leaves out on purpose; any other module must match
    the file key for key.
    """
    own = list(module.state_dict())
    parts = getattr(module, 'PRETRAINED_PARTS', None)
    have, own_set = set(file_keys), set(own)
    missing = [
        k for k in own
        if (parts is None or k.split('.', 1)[0] in parts) and k not in have
    ]
    unexpected = [
        k for k in file_keys
        if k not in own_set and k != PEFT_META_KEY and not (
            parts is not None and _unused_by_config(module, k))
    ]
    if missing or unexpected:
        causes = key_mismatch_causes(missing, unexpected, file_keys, own)
        raise CheckpointError(
            f"pretrained backbone {where} does not fit the config: "
            f"{'; '.join(causes)}; or use the checkpoint that matches the "
            'config')


@WEIGHT_INITIALIZERS.register_module(name='StrictPretrained')
class StrictPretrainedInit(PretrainedInit):
    """mmengine's ``PretrainedInit`` after :func:`check_pretrained_keys`.

    Args:
        checkpoint (str): Local file or URL, as ``Pretrained``.
        prefix (str, optional): Load the keys under this prefix only.
        map_location (str): As ``Pretrained``. Defaults to 'cpu'.
    """

    def __call__(self, module):
        path = str(self.checkpoint)
        missing = missing_pretrained(path)
        if missing is not None:
            raise FileNotFoundError(missing)
        state = _file_state(path, self.prefix)
        if getattr(module, 'PRETRAINED_PARTS', None) is not None:
            # A prompted backbone's own load checks first (prompts,
            # registers, shapes), as for any state dict it loads.
            check_state_fits(module, state, '', module.state_dict())
        where = f"'{path}'" + (f" (prefix '{self.prefix}')"
                               if self.prefix else '')
        check_pretrained_keys(module, list(state), where)
        del state
        super().__call__(module)

    def _get_init_info(self) -> str:
        return f'{self.__class__.__name__}: load from {self.checkpoint}'
