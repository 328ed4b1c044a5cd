"""The PEFT state of a prompted backbone: its signature and metadata, and
the frozen tensors a PEFT state dict leaves out, rebuilt on load.

A PEFT file keeps one metadata entry per prompted backbone in its ``meta``
(``meta['peft'][prefix]``, :mod:`mmcvpt.peft.file_format`): the arguments
that change the function (:func:`peft_signature`), the mmcvpt version, the
config, and the pretrained file that restores the frozen tensors with its
sha256. In memory the loaders hand the entry to the backbone at
``<prefix>peft_meta`` (where older files keep it in the file), and the
backbone's load hook calls :func:`complete_peft_state` with it.
"""
import os.path as osp

from .pretrained_file import (CheckpointError, file_sha256,
                              load_pretrained_state, pretrained_keys,
                              pretrained_source)

# In-memory state-dict entry (a dict, not a tensor) that hands a backbone
# its metadata; never in a file written today.
PEFT_META_KEY = 'peft_meta'
# Entry key a loader sets in memory: the config file the model is built
# from, to find the pretrained file relative to it.
LOADED_CONFIG_KEY = 'loaded_config'


def peft_signature(backbone) -> dict:
    """Arguments that change the function; a PEFT state dict must match.

    The backbone type, arch, patch size, the attributes named by the
    backbone's ``SIGNATURE``, and those of ``OPTIONAL_SIGNATURE`` that are
    not at their default (so that files saved before an entry existed still
    match).
    """
    kernel = backbone.patch_embed.projection.kernel_size
    signature = dict(
        backbone_type=type(backbone).__name__,
        arch=dict(
            embed_dims=backbone.embed_dims,
            num_layers=backbone.num_layers,
            num_heads=backbone.num_heads),
        patch_size=kernel[0] if kernel[0] == kernel[1] else list(kernel))
    for key in backbone.SIGNATURE:
        signature[key] = getattr(backbone, key)
    for key, default in backbone.OPTIONAL_SIGNATURE.items():
        if getattr(backbone, key) != default:
            signature[key] = getattr(backbone, key)
    return signature


def check_peft_signature(backbone, meta: dict, source: str = '') -> None:
    """Raise CheckpointError unless ``meta`` fits ``backbone``."""
    own = peft_signature(backbone)
    optional = backbone.OPTIONAL_SIGNATURE
    for key in dict.fromkeys([*own, *optional]):
        value, saved = own.get(key, optional.get(key)), meta.get(
            key, optional.get(key))
        if saved != value:
            raise CheckpointError(
                f'PEFT checkpoint {source}was saved for {key}={saved!r} but '
                f'this model has {key}={value!r}; use the config it was '
                f"trained with ({meta.get('config')})")


def _local_source(backbone):
    source = pretrained_source(backbone.init_cfg)
    return source if source is not None and osp.isfile(source[0]) else None


def _abspath(path):
    return osp.abspath(osp.expanduser(path))


def peft_meta(backbone, config: str = None) -> dict:
    """:func:`peft_signature` plus version, config, pretrained file, sha256.

    The pretrained file is recorded as written (``pretrained``), absolute
    (``pretrained_abspath``) and relative to the config's folder
    (``pretrained_from_config``), for a tree moved elsewhere.
    """
    from ..version import __version__
    meta = dict(
        peft_signature(backbone),
        mmcvpt_version=__version__,
        config=config,
        pretrained=None,
        pretrained_abspath=None,
        pretrained_from_config=None,
        pretrained_sha256=None,
        pretrained_prefix=None)
    source = _local_source(backbone)
    if source is not None:
        meta.update(
            pretrained=source[0],
            pretrained_abspath=_abspath(source[0]),
            pretrained_sha256=file_sha256(source[0]),
            pretrained_prefix=source[1])
        if config:
            meta['pretrained_from_config'] = osp.relpath(
                _abspath(source[0]), osp.dirname(_abspath(config)))
    return meta


def rebuildable_keys(backbone) -> set:
    """State-dict keys that the pretrained file restores exactly (those a
    PEFT state dict may leave out), including those the backbone derives
    from them (``derive_missing``); empty without a local file."""
    source = _local_source(backbone)
    if source is None:
        return set()
    available = pretrained_keys(*source)
    keys = {k for k in backbone.state_dict() if k in available}
    derived = dict.fromkeys(keys)
    backbone.derive_missing(derived, '')
    return keys | set(derived)


def pretrained_candidates(backbone, meta: dict) -> list:
    """Where the pretrained file may be, in order: the backbone's own
    init_cfg path, the recorded path as written, absolute, and relative to
    the config the model is loaded with (``loaded_config``, set by
    PEFTCheckpointHook in a runner) or was saved with."""
    own = pretrained_source(backbone.init_cfg)
    paths = [own and own[0], meta.get('pretrained'),
             meta.get('pretrained_abspath')]
    relative = meta.get('pretrained_from_config')
    if relative:
        paths += [
            osp.join(osp.dirname(_abspath(cfg)), relative)
            for cfg in (meta.get(LOADED_CONFIG_KEY), meta.get('config'))
            if cfg
        ]
    return list(dict.fromkeys(str(p) for p in paths if p))


def _verified_pretrained(backbone, meta: dict) -> str:
    """The first candidate file with the recorded sha256."""
    want, saved = meta.get('pretrained_sha256'), meta.get('pretrained')
    candidates = pretrained_candidates(backbone, meta)
    found = [p for p in candidates if osp.isfile(p)]
    for path in found:
        if file_sha256(path) == want:
            return path
    if found:
        raise CheckpointError(
            f"pretrained backbone '{found[0]}' has sha256 "
            f'{file_sha256(found[0])[:16]}... but the PEFT checkpoint was '
            f"trained on '{saved}' with sha256 {want}; use that file "
            '(model.backbone.init_cfg.checkpoint)')
    raise CheckpointError(
        f"the PEFT checkpoint needs its pretrained backbone '{saved}' "
        f'(sha256 {want}) to rebuild the frozen tensors, and it is not '
        f"there (looked for {', '.join(candidates)}); put the file there "
        'or point model.backbone.init_cfg.checkpoint to it')


def complete_peft_state(backbone, state_dict: dict, prefix: str, meta: dict,
                        own: dict) -> None:
    """Add to ``state_dict`` the frozen tensors a PEFT state dict left out,
    from the verified pretrained file; CheckpointError if any stays
    missing."""
    check_peft_signature(backbone, meta)
    missing = [k for k in own if prefix + k not in state_dict]
    if not missing:
        return
    if meta.get('pretrained_sha256') is None:
        raise CheckpointError(
            f'the PEFT state dict lacks {prefix}{missing[0]} (and '
            f'{len(missing) - 1} more) and names no pretrained file to '
            'rebuild them from; it was not written by mmcvpt')
    path = _verified_pretrained(backbone, meta)
    pretrained = load_pretrained_state(path, meta.get('pretrained_prefix'))
    for key in missing:
        if key in pretrained:
            state_dict[prefix + key] = pretrained[key]
    backbone.derive_missing(state_dict, prefix)
    still = [k for k in own if prefix + k not in state_dict]
    if still:
        raise CheckpointError(
            f"neither the PEFT state dict nor '{path}' has {prefix}"
            f'{still[0]} (and {len(still) - 1} more); the file is not the '
            'one the checkpoint was trained on')
