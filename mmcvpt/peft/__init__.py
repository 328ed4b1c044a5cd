"""Checkpoint policy of prompt tuning: PEFT files (the tuned tensors and,
in ``meta``, one metadata entry per prompted backbone), their completion
from the verified pretrained file, the checks every load goes through, the
``StrictPretrained`` initializer and the hook that writes PEFT files.

Importing it makes mmengine's local checkpoint loader read PEFT files and
``.safetensors`` files (:func:`register_peft_loader`)."""
from .checkpoint import (PEFT_SUFFIX, load_peft_checkpoint, peft_entries,
                         peft_path, prompted_backbones, save_peft_checkpoint,
                         tuned_state_dict)
from .file_format import (load_file, load_safetensors, peft_file_entries,
                          register_peft_loader, save_safetensors)
from .hook import PEFTCheckpointHook
from .load_checks import check_state_fits
from .pretrained_file import (PRETRAINED_TYPES, CheckpointError, file_sha256,
                              load_pretrained_state, pretrained_source)
from .state import (PEFT_META_KEY, check_peft_signature, complete_peft_state,
                    peft_meta, peft_signature, rebuildable_keys)
from .strict_pretrained import StrictPretrainedInit, check_pretrained_keys

__all__ = [
    'PEFT_SUFFIX', 'load_peft_checkpoint', 'peft_entries', 'peft_path',
    'prompted_backbones', 'save_peft_checkpoint', 'tuned_state_dict',
    'PEFTCheckpointHook', 'check_state_fits', 'PRETRAINED_TYPES',
    'CheckpointError', 'file_sha256', 'load_pretrained_state',
    'pretrained_source', 'PEFT_META_KEY', 'check_peft_signature',
    'complete_peft_state', 'peft_meta', 'peft_signature', 'rebuildable_keys',
    'StrictPretrainedInit', 'check_pretrained_keys', 'load_file',
    'load_safetensors', 'peft_file_entries', 'register_peft_loader',
    'save_safetensors'
]

register_peft_loader()
