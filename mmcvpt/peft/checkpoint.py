"""Small checkpoints holding only what prompt tuning changed.

A PEFT checkpoint is an mmengine-style file, ``{'meta': ..., 'state_dict':
...}``, whose state dict has every tensor of the model except the frozen
backbone tensors its pretrained file holds (tensors only), and whose
``meta['peft']`` has one entry per prompted backbone (:mod:`mmcvpt.peft.
state`) naming that file and its sha256; or the same as ``.safetensors``
(:mod:`mmcvpt.peft.file_format`). Any loader (``load_from``,
``init_model``, the Inferencers, ``get_model``, ``tools/test.py``) gives
the same model as the full checkpoint: the backbone fills the frozen
tensors from the verified file while the state dict is loaded, or stops
with one line.
"""
import os.path as osp

import torch.nn as nn

from .file_format import (load_file, peft_file_entries, save_file_form,
                          split_peft_state, to_file_form)
from .pretrained_file import CheckpointError
from .state import (LOADED_CONFIG_KEY, PEFT_META_KEY, check_peft_signature,
                    peft_meta, rebuildable_keys)

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
    peft_meta`): the in-memory form, which ``load_state_dict`` takes;
    :func:`save_peft_checkpoint` moves the entries to the file's ``meta``.
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
    """``{backbone prefix: peft_meta}`` of an in-memory PEFT state dict
    (empty for any other state dict)."""
    return split_peft_state(state_dict)[1]


def save_peft_checkpoint(model: nn.Module, path: str, meta: dict,
                         config: str = None) -> None:
    """Write ``meta`` + the entries in ``meta['peft']`` and the tensors of
    :func:`tuned_state_dict`, as ``.safetensors`` by the suffix, atomically
    (temporary file + rename): never half a file."""
    save_file_form(to_file_form(tuned_state_dict(model, config), meta), path)


def load_peft_checkpoint(model: nn.Module, path: str,
                         config: str = None) -> dict:
    """Pretrained backbone + PEFT tensors into ``model``.

    The backbone completes the state dict from its verified pretrained file
    (see :mod:`mmcvpt.peft.state`), also looked for relative to ``config``
    (the model's config file); the result must fit the model exactly. Any
    format: ``.pth`` (metadata in ``meta`` or, older files, in the state
    dict) or ``.safetensors``.

    Returns:
        dict: The file's ``meta``, plus ``peft``: its ``{backbone prefix:
        peft_meta}`` entries.
    """
    ckpt = load_file(path)
    entries = peft_file_entries(ckpt)
    if not entries:
        raise CheckpointError(f"{path} is not a PEFT checkpoint (no 'peft' "
                              "entries in its meta); load it with "
                              'load_from instead')
    for prefix, backbone in prompted_backbones(model):
        if prefix in entries:
            check_peft_signature(backbone, entries[prefix], f'{path} ')
    state = ckpt['state_dict']
    for entry in peft_entries(state).values():
        if config:
            entry[LOADED_CONFIG_KEY] = config
    model.load_state_dict(state, strict=True)
    return dict(ckpt.get('meta', {}), peft=entries)
