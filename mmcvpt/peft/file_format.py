"""PEFT files any tool can read: tensors in the state dict, metadata in
``meta``.

On disk a PEFT file is ``{'meta': {..., 'peft': {prefix: entry}},
'state_dict': {key: tensor}}`` (``.pth``), or a ``.safetensors`` file with
the same tensors and the JSON of ``meta`` in its header (``'meta'``). In
memory, the form a model loads, each entry sits at ``<prefix>peft_meta`` of
the state dict, where the backbone's load hook finds it
(:func:`~mmcvpt.peft.state.complete_peft_state`).

mmengine's loaders (``load_from``, ``init_model``, the Inferencers,
``get_model``, ``tools/test.py``) hand only the state dict to the model, so
:func:`register_peft_loader` replaces mmengine's local-file scheme of
``CheckpointLoader`` by :func:`load_from_local`: mmengine's own loader, plus
the in-memory form for PEFT files and the reading of ``.safetensors`` files.
"""
import json
import os
import os.path as osp
from collections import OrderedDict

from mmengine.runner.checkpoint import CheckpointLoader

from .state import LOADED_CONFIG_KEY, PEFT_META_KEY

# meta key of the entries, and safetensors header key of the whole meta.
META_KEY = 'peft'
HEADER_KEY = 'meta'
SAFETENSORS_SUFFIX = '.safetensors'


def split_peft_state(state: dict) -> tuple:
    """In-memory state dict -> (tensors only, ``{prefix: entry}``)."""
    entries = {
        k[:-len(PEFT_META_KEY)]: v
        for k, v in state.items()
        if k == PEFT_META_KEY or k.endswith('.' + PEFT_META_KEY)
    }
    meta_keys = {prefix + PEFT_META_KEY for prefix in entries}
    tensors = OrderedDict(
        (k, v) for k, v in state.items() if k not in meta_keys)
    return tensors, entries


def peft_file_entries(checkpoint: dict) -> dict:
    """``{backbone prefix: entry}`` of a loaded file, either format (empty
    for any other checkpoint)."""
    if not isinstance(checkpoint, dict):
        return {}
    entries = (checkpoint.get('meta') or {}).get(META_KEY)
    if entries:
        return dict(entries)
    return split_peft_state(checkpoint.get('state_dict') or {})[1]


def to_memory_form(checkpoint: dict) -> dict:
    """A file with ``meta['peft']`` -> the same checkpoint whose state dict
    also carries each entry at ``<prefix>peft_meta``; others unchanged."""
    if not isinstance(checkpoint, dict):
        return checkpoint
    entries = (checkpoint.get('meta') or {}).get(META_KEY)
    if not entries:
        return checkpoint
    state = OrderedDict(checkpoint.get('state_dict') or {})
    for prefix, entry in entries.items():
        state[prefix + PEFT_META_KEY] = entry
    return dict(checkpoint, state_dict=state)


def to_file_form(state: dict, meta: dict) -> dict:
    """In-memory state dict + file meta -> what is written (without the
    config a loader added, ``loaded_config``)."""
    tensors, entries = split_peft_state(state)
    entries = {
        prefix: {k: v for k, v in entry.items() if k != LOADED_CONFIG_KEY}
        for prefix, entry in entries.items()
    }
    return dict(meta=dict(meta, **{META_KEY: entries}), state_dict=tensors)


def save_safetensors(checkpoint: dict, path: str) -> None:
    """``{'meta', 'state_dict'}`` -> ``path`` (tensors + JSON header)."""
    from safetensors.torch import save

    # safetensors refuses tensors sharing storage; a PEFT file is small.
    tensors = {
        k: v.detach().cpu().contiguous().clone()
        for k, v in checkpoint['state_dict'].items()
    }
    header = {'format': 'pt', HEADER_KEY: json.dumps(checkpoint['meta'])}
    data = save(tensors, metadata=header)
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = f'{path}.{os.getpid()}.tmp'
    try:
        with open(tmp, 'wb') as f:  # then rename: never half a file
            f.write(data)
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def load_safetensors(path: str, map_location=None) -> dict:
    """A ``.safetensors`` file as an mmengine checkpoint: ``state_dict``,
    and ``meta`` when its header has one (mmcvpt's export)."""
    from safetensors import safe_open
    from safetensors.torch import load_file
    device = map_location if isinstance(map_location, str) else 'cpu'
    with safe_open(path, framework='pt') as f:
        header = f.metadata() or {}
    checkpoint = dict(state_dict=load_file(path, device=device))
    if HEADER_KEY in header:
        checkpoint['meta'] = json.loads(header[HEADER_KEY])
    return checkpoint


def load_from_local(filename: str, map_location=None):
    """mmengine's local loader, plus ``.safetensors`` files and the
    in-memory form of PEFT files."""
    path = osp.expanduser(filename)
    if path.endswith(SAFETENSORS_SUFFIX):
        if not osp.isfile(path):
            raise FileNotFoundError(f'{filename} can not be found.')
        checkpoint = load_safetensors(path, map_location)
    else:
        checkpoint = _MMENGINE_LOCAL(filename, map_location)
    return to_memory_form(checkpoint)


_MMENGINE_LOCAL = CheckpointLoader._schemes['']


def register_peft_loader() -> None:
    """Make :func:`load_from_local` mmengine's local scheme (idempotent)."""
    CheckpointLoader.register_scheme('', load_from_local, force=True)


def load_file(path: str) -> dict:
    """Any local checkpoint as mmengine's loaders see it."""
    return load_from_local(path, map_location='cpu')


def save_file_form(checkpoint: dict, path: str) -> None:
    """Write a file-form checkpoint, as safetensors by the suffix."""
    from ..utils.io import atomic_torch_save
    if path.endswith(SAFETENSORS_SUFFIX):
        save_safetensors(checkpoint, path)
    else:
        atomic_torch_save(checkpoint, path)
