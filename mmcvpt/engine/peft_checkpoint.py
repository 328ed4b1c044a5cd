"""Small checkpoints holding only what prompt tuning changed.

A PEFT checkpoint is an mmengine-style file, ``{'meta': ..., 'state_dict':
...}``, whose state dict has every tensor of the model except the frozen
backbone tensors its pretrained file holds, plus ``backbone.peft_meta``
naming that file and its sha256. Any loader (``load_from``, ``init_model``,
the Inferencers, ``get_model``, ``tools/test.py``) gives the same model as
the full checkpoint: the backbone fills the frozen tensors from the verified
file while the state dict is loaded, or stops with one line.
"""
import os.path as osp

import torch
import torch.nn as nn

from mmcvpt.models.backbones import PromptedViT
from mmcvpt.models.backbones.prompted_vit import PEFT_META_KEY
from mmcvpt.models.utils.pretrained import CheckpointError
from mmcvpt.utils.io import atomic_torch_save
from mmcvpt.version import __version__

PEFT_SUFFIX = '_peft.pth'


def peft_path(ckpt_path: str) -> str:
    """``work/iter_100.pth`` -> ``work/iter_100_peft.pth``."""
    root, _ = osp.splitext(ckpt_path)
    return root + PEFT_SUFFIX


def _prompted_backbones(model: nn.Module):
    """``(state-dict prefix, module)`` of every PromptedViT in ``model``."""
    for name, module in model.named_modules():
        if isinstance(module, PromptedViT):
            yield (name + '.' if name else ''), module


def tuned_state_dict(model: nn.Module, config: str = None) -> dict:
    """The model's state dict without what the pretrained file restores.

    Left out: frozen backbone tensors that the backbone's pretrained file
    holds (checked by key when saving, by sha256 when loading). Kept: every
    trainable tensor, buffers, and frozen tensors nothing else can rebuild
    (no pretrained file, ``cross_attn_weights='random'``). Each prompted
    backbone adds ``<prefix>peft_meta`` (a dict) that lets any loader
    complete and verify the state dict.
    """
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    rebuildable, metas = set(), {}
    for prefix, backbone in _prompted_backbones(model):
        rebuildable |= {prefix + k for k in backbone.peft_rebuildable_keys()}
        metas[prefix + PEFT_META_KEY] = backbone.peft_meta(config)
    state = {
        k: v.detach().cpu()
        for k, v in model.state_dict().items()
        if k in trainable or k not in rebuildable
    }
    state.update(metas)
    return state


def peft_metadata(model: nn.Module, config: str = None) -> dict:
    """What a PEFT checkpoint needs from the model it is loaded into."""
    meta = dict(mmcvpt_version=__version__, config=config)
    backbone = getattr(model, 'backbone', None)
    if isinstance(backbone, PromptedViT):
        meta.update(backbone.peft_meta(config))
    return meta


def check_peft_metadata(model: nn.Module, meta: dict, source: str) -> None:
    """Raise CheckpointError if ``model`` is not what the file was for."""
    backbone = getattr(model, 'backbone', None)
    if isinstance(backbone, PromptedViT):
        backbone.check_peft_signature(meta, f'{source} ')


def save_peft_checkpoint(model: nn.Module, path: str, meta: dict) -> None:
    """Write atomically (temporary file + rename): never half a file."""
    config = meta.get('peft', {}).get('config')
    atomic_torch_save(
        dict(meta=meta, state_dict=tuned_state_dict(model, config)), path)


def load_peft_checkpoint(model: nn.Module, path: str) -> dict:
    """Pretrained backbone + PEFT tensors into ``model``; returns the meta.

    The backbone completes the state dict from its verified pretrained file
    (see :class:`PromptedViT`); the result must fit the model exactly.
    """
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    meta = ckpt.get('meta', {})
    if 'peft' not in meta:
        raise CheckpointError(f'{path} is not a PEFT checkpoint (no '
                              'meta.peft); load it with load_from instead')
    check_peft_metadata(model, meta['peft'], path)
    model.load_state_dict(ckpt['state_dict'], strict=True)
    return meta
