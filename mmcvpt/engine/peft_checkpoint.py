"""Small checkpoints holding only what prompt tuning changed.

A PEFT checkpoint is an mmengine-style file, ``{'meta': ..., 'state_dict':
...}``, whose state dict has every tensor of the model except the frozen
parameters (prompts, heads and the heads' normalisation statistics), and
whose ``meta['peft']`` says which backbone it expects. The frozen backbone
comes from its pretrained file, so the pair reproduces the full model.
"""
import os.path as osp

import torch
import torch.nn as nn

from mmcvpt.models.backbones import PromptedViT
from mmcvpt.utils.io import atomic_torch_save
from mmcvpt.version import __version__

PEFT_SUFFIX = '_peft.pth'


def peft_path(ckpt_path: str) -> str:
    """``work/iter_100.pth`` -> ``work/iter_100_peft.pth``."""
    root, _ = osp.splitext(ckpt_path)
    return root + PEFT_SUFFIX


def tuned_state_dict(model: nn.Module) -> dict:
    """The model's state dict without its frozen parameters."""
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    return {
        k: v.detach().cpu()
        for k, v in model.state_dict().items() if k not in frozen
    }


def peft_metadata(model: nn.Module, config: str = None) -> dict:
    """What a PEFT checkpoint needs from the model it is loaded into."""
    meta = dict(mmcvpt_version=__version__, config=config)
    backbone = getattr(model, 'backbone', None)
    if isinstance(backbone, PromptedViT):
        init_cfg = backbone.init_cfg if isinstance(backbone.init_cfg,
                                                   dict) else {}
        meta.update(
            backbone_type=type(backbone).__name__,
            arch=dict(
                embed_dims=backbone.embed_dims,
                num_layers=backbone.num_layers,
                num_heads=backbone.num_heads),
            num_prompts=backbone.num_prompts,
            pretrained=init_cfg.get('checkpoint'))
    return meta


def check_peft_metadata(model: nn.Module, meta: dict, source: str) -> None:
    """Raise ValueError if ``model`` is not what the checkpoint was for."""
    expected = peft_metadata(model)
    for key in ('backbone_type', 'arch', 'num_prompts'):
        if meta.get(key) != expected.get(key):
            raise ValueError(
                f'PEFT checkpoint {source} was saved for {key}='
                f'{meta.get(key)!r} but this model has {key}='
                f'{expected.get(key)!r}; use the config it was trained with '
                f"({meta.get('config')})")


def save_peft_checkpoint(model: nn.Module, path: str, meta: dict) -> None:
    """Write atomically (temporary file + rename): never half a file."""
    atomic_torch_save(dict(meta=meta, state_dict=tuned_state_dict(model)),
                      path)


def load_peft_checkpoint(model: nn.Module, path: str) -> dict:
    """Pretrained backbone + PEFT tensors into ``model``; returns the meta.

    The backbone is initialised from its ``init_cfg`` (the pretrained file)
    first, then the tuned tensors are loaded; every one must fit the model.
    """
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    meta = ckpt.get('meta', {})
    if 'peft' not in meta:
        raise ValueError(f'{path} is not a PEFT checkpoint (no meta.peft); '
                         'load it with load_from instead')
    check_peft_metadata(model, meta['peft'], path)
    model.backbone.init_weights()
    missing, unexpected = model.load_state_dict(
        ckpt['state_dict'], strict=False)
    if unexpected:
        raise ValueError(f'PEFT checkpoint {path} has tensors this model '
                         f'lacks: {unexpected[:5]}')
    return meta
