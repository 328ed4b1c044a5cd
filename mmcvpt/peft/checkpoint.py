"""Small checkpoints holding only what prompt tuning changed.

A PEFT checkpoint is an mmengine-style file, ``{'meta': ..., 'state_dict':
...}``, whose state dict has every tensor of the model except the frozen
backbone tensors its pretrained file holds, plus ``<prefix>peft_meta`` per
prompted backbone (:mod:`mmcvpt.peft.state`) naming that file and its
sha256. Any loader (``load_from``, ``init_model``, the Inferencers,
``get_model``, ``tools/test.py``) gives the same model as the full
checkpoint: the backbone fills the frozen tensors from the verified file
while the state dict is loaded, or stops with one line.
"""
import os.path as osp

import torch
import torch.nn as nn

from ..utils.io import atomic_torch_save
from .pretrained_file import CheckpointError
from .state import (PEFT_META_KEY, check_peft_signature, peft_meta,
                    rebuildable_keys)

PEFT_SUFFIX = '_peft.pth'


def peft_path(ckpt_path: str) -> str:
    """``work/iter_100.pth`` -> ``work/iter_100_peft.pth``."""
    root, _ = osp.splitext(ckpt_path)
    return root + PEFT_SUFFIX


def prompted_backbones(model: nn.Module):
    """``(state-dict prefix, module)`` of every PromptedViT in ``model``."""
    from ..models.backbones import PromptedViT
    for name, module in model.named_modules():
        if isinstance(module, PromptedViT):
            yield (name + '.' if name else ''), module


def tuned_state_dict(model: nn.Module, config: str = None) -> dict:
    """The model's state dict without what the pretrained file restores.

    Left out: frozen backbone tensors that the backbone's pretrained file
    holds (checked by key when saving, by sha256 when loading). Kept: every
    trainable tensor, buffers, and frozen tensors nothing else can rebuild
    (no pretrained file, ``cross_attn_weights='random'``). Each prompted
    backbone adds ``<prefix>peft_meta`` (:func:`~mmcvpt.peft.state.
    peft_meta`), the file's only metadata of what it was trained with.
    """
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    rebuildable, metas = set(), {}
    for prefix, backbone in prompted_backbones(model):
        rebuildable |= {prefix + k for k in rebuildable_keys(backbone)}
        metas[prefix + PEFT_META_KEY] = peft_meta(backbone, config)
    state = {
        k: v.detach().cpu()
        for k, v in model.state_dict().items()
        if k in trainable or k not in rebuildable
    }
    state.update(metas)
    return state


def peft_entries(state_dict: dict) -> dict:
    """``{backbone prefix: peft_meta}`` of a PEFT state dict (empty for any
    other state dict)."""
    return {
        k[:-len(PEFT_META_KEY)]: v
        for k, v in state_dict.items()
        if k == PEFT_META_KEY or k.endswith('.' + PEFT_META_KEY)
    }


def save_peft_checkpoint(model: nn.Module, path: str, meta: dict,
                         config: str = None) -> None:
    """Write atomically (temporary file + rename): never half a file."""
    atomic_torch_save(
        dict(meta=meta, state_dict=tuned_state_dict(model, config)), path)


def load_peft_checkpoint(model: nn.Module, path: str) -> dict:
    """Pretrained backbone + PEFT tensors into ``model``.

    The backbone completes the state dict from its verified pretrained file
    (see :mod:`mmcvpt.peft.state`); the result must fit the model exactly.

    Returns:
        dict: The file's ``meta``, plus ``peft``: its ``{backbone prefix:
        peft_meta}`` entries.
    """
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    state = ckpt.get('state_dict', {})
    entries = peft_entries(state)
    if not entries:
        raise CheckpointError(f'{path} is not a PEFT checkpoint (no '
                              f'{PEFT_META_KEY} in its state_dict); load it '
                              'with load_from instead')
    for prefix, backbone in prompted_backbones(model):
        if prefix in entries:
            check_peft_signature(backbone, entries[prefix], f'{path} ')
    model.load_state_dict(state, strict=True)
    return dict(ckpt.get('meta', {}), peft=entries)
