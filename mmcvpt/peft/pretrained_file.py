"""The pretrained backbone file that completes a PEFT state dict.

A PEFT checkpoint leaves out the frozen backbone tensors that its pretrained
file holds. These helpers read that file as mmengine's ``PretrainedInit``
does and identify it by content (sha256), so that a different file with the
same name is refused instead of giving a silently different model.
"""
import functools
import hashlib
import os
import os.path as osp
import re
from typing import Optional

import torch


class CheckpointError(ValueError):
    """A checkpoint that does not fit the model, in one line."""


# init_cfg types that load a pretrained file: mmengine's lenient one and
# :class:`~mmcvpt.peft.StrictPretrainedInit`.
PRETRAINED_TYPES = ('Pretrained', 'StrictPretrained')


def pretrained_source(init_cfg) -> Optional[tuple]:
    """``(path, prefix)`` of a local pretrained-file init_cfg, else None."""
    if not isinstance(init_cfg, dict) or \
            init_cfg.get('type') not in PRETRAINED_TYPES:
        return None
    path = init_cfg.get('checkpoint')
    if not path or '://' in str(path):
        return None  # URLs: no local file to hash later
    return str(path), init_cfg.get('prefix')


def missing_pretrained(checkpoint) -> Optional[str]:
    """One line if ``checkpoint`` is a local path that does not exist."""
    path = str(checkpoint)
    if '://' in path or osp.isfile(path):
        return None
    return (f"pretrained backbone '{path}' not found; create it with "
            '`python tools/model_converters/vit2mmcvpt.py '
            f'ORIGINAL_VIT(.npz|.pth|.safetensors) {path}` (README: '
            '"Pretrained weights")')


def _stat_key(path: str) -> tuple:
    st = os.stat(path)
    return osp.realpath(path), st.st_size, st.st_mtime_ns


@functools.lru_cache(maxsize=8)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 22), b''):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: str) -> str:
    """Content hash, computed once per (file, size, mtime)."""
    return _sha256(*_stat_key(path))


def load_pretrained_state(path: str, prefix: Optional[str] = None) -> dict:
    """The tensors mmengine's ``PretrainedInit`` would load from ``path``.

    As mmengine: the ``state_dict`` (or ``model``) entry if there is one,
    without a leading ``module.``; with ``prefix``, only the keys under it,
    prefix removed.
    """
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True,
                          mmap=True)
    except RuntimeError:  # legacy (non-zip) files cannot be memory-mapped
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
    state = ckpt
    for key in ('state_dict', 'model') if prefix else ('state_dict', ):
        if isinstance(ckpt, dict) and key in ckpt:
            state = ckpt[key]
            break
    state = {re.sub(r'^module\.', '', k): v for k, v in state.items()}
    if prefix:
        prefix = prefix if prefix.endswith('.') else prefix + '.'
        state = {
            k[len(prefix):]: v
            for k, v in state.items() if k.startswith(prefix)
        }
    return state


@functools.lru_cache(maxsize=8)
def _keys(path, size, mtime_ns, prefix) -> frozenset:
    return frozenset(load_pretrained_state(path, prefix))


def pretrained_keys(path: str, prefix: Optional[str] = None) -> frozenset:
    """Keys :func:`load_pretrained_state` returns, cached per file."""
    return _keys(*_stat_key(path), prefix)
