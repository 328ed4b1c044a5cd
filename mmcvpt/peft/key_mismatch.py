"""One line of likely causes for a pretrained file whose keys are not the
backbone's (another model family, depth, prefix or FFN type)."""
import re

# Keys of heads and necks; a converted backbone file never has them
# (tools/model_converters/vit2mmcvpt.py drops them).
_HEAD = re.compile(r'^(head|pre_logits|fc_norm|decode_head|auxiliary_head|'
                   r'neck)([./]|$)')
_LAYER = re.compile(r'^layers\.(\d+)\.')


def _some(keys: list) -> str:
    """The first two keys, and '...' if there are more."""
    return ', '.join(keys[:2]) + (', ...' if len(keys) > 2 else '')


def _count(keys: list) -> str:
    return f' ({len(keys)} in all)' if len(keys) > 2 else ''


def _take(keys: list, pattern: str) -> list:
    """Remove the keys matching ``pattern`` from ``keys``; return them."""
    found = [k for k in keys if re.search(pattern, k)]
    keys[:] = [k for k in keys if not re.search(pattern, k)]
    return found


def _depth(keys) -> int:
    indices = [int(m.group(1)) for m in map(_LAYER.match, keys) if m]
    return max(indices) + 1 if indices else 0


def key_mismatch_causes(missing: list, unexpected: list, file_keys: list,
                        model_keys: list) -> list:
    """The likely causes, one clause each, of a pretrained backbone file
    whose keys differ from the model's.

    Args:
        missing (list[str]): Model keys the file lacks, in model order.
        unexpected (list[str]): File keys the model lacks, in file order.
        file_keys (list[str]): Every key of the file.
        model_keys (list[str]): Every key of the model.

    Returns:
        list[str]: Clauses such as "the config has pre_norm=True (CLIP) but
        the file has no pre_norm.*: set pre_norm=False".
    """
    missing, unexpected = list(missing), list(unexpected)
    if missing:
        # The whole backbone under a prefix: a full model checkpoint.
        outer = next((k for k in file_keys if k.endswith('.' + missing[0])),
                     None)
        prefix = outer and outer[:-len(missing[0])]
        if prefix and all(prefix + k in file_keys for k in missing):
            return [
                f"the file's backbone keys are under '{prefix}' ({outer}, "
                f"...): set prefix='{prefix[:-1]}' in init_cfg"
            ]
    causes = []
    have, want = _depth(file_keys), _depth(model_keys)
    if have and want and have != want:
        causes.append(f'the file has {have} layers but the config has {want} '
                      '(arch num_layers)')
        beyond = '|'.join(str(i) for i in range(min(have, want), max(have,
                                                                   want)))
        for keys in (missing, unexpected):
            _take(keys, rf'^layers\.({beyond})\.')

    found = _take(unexpected, r'\.gamma[12]\.weight$')
    if found:
        causes.append(f'the file has layer-scale tensors ({_some(found)}) but '
                      'the config has layer_scale_init_value=0: set '
                      'layer_scale_init_value=1e-5 (DINOv2)')
    found = _take(missing, r'\.gamma[12]\.weight$')
    if found:
        causes.append('the config has layer scale (layer_scale_init_value > '
                      '0, DINOv2) but the file has no layer-scale tensors '
                      f'({_some(found)}): set layer_scale_init_value=0')

    # mmpretrain turns the patch-embedding bias off with pre_norm=True: one
    # setting explains both keys.
    config_pre_norm = bool(_take(missing, r'^pre_norm\.'))
    file_pre_norm = bool(_take(unexpected, r'^pre_norm\.'))
    if config_pre_norm:
        causes.append('the config has pre_norm=True (CLIP) but the file has '
                      'no pre_norm.*: set pre_norm=False')
    if file_pre_norm:
        causes.append('the file has pre_norm.* (CLIP) but the config has '
                      'pre_norm=False: set pre_norm=True')
    bias = r'^patch_embed\.projection\.bias$'
    if _take(unexpected, bias) and not config_pre_norm:
        causes.append('the file has patch_embed.projection.bias but the '
                      "config's patch embedding has no bias: set "
                      'patch_cfg=dict(bias=True)')
    if _take(missing, bias) and not file_pre_norm:
        causes.append("the config's patch embedding has a bias but the file "
                      'has no patch_embed.projection.bias: set '
                      'patch_cfg=dict(bias=False)')

    if _take(missing, r'^ln1\.'):
        causes.append('the config has final_norm=True but the file has no '
                      'final norm (ln1.*): set final_norm=False')
    swiglu, mlp = r'\.ffn\.w(12|3)\.', r'\.ffn\.layers\.'
    if any(re.search(swiglu, k) for k in unexpected) and any(
            re.search(mlp, k) for k in missing):
        found = _take(unexpected, swiglu)
        _take(missing, mlp)
        causes.append(f'the file has a SwiGLU FFN ({_some(found)}) but the '
                      "config has an MLP one: set layer_cfgs=dict(ffn_type='"
                      "swiglu_fused') (DINOv2-g)")
    if any(re.search(swiglu, k) for k in missing) and any(
            re.search(mlp, k) for k in unexpected):
        found = _take(unexpected, mlp)
        _take(missing, swiglu)
        causes.append("the config has a SwiGLU FFN (ffn_type='swiglu_fused') "
                      f'but the file has an MLP one ({_some(found)}): remove '
                      'ffn_type from layer_cfgs')
    found = _take(missing, r'\.attn\.qkv\.bias$')
    if found:
        causes.append('the config has qkv_bias=True but the file has no qkv '
                      f'biases ({_some(found)}): set qkv_bias=False')
    found = _take(unexpected, r'\.attn\.qkv\.bias$')
    if found:
        causes.append(f'the file has qkv biases ({_some(found)}) but the '
                      'config has qkv_bias=False: set qkv_bias=True')

    found = [k for k in unexpected if _HEAD.match(k)]
    if found:
        unexpected = [k for k in unexpected if k not in found]
        causes.append(f'the file has head tensors ({_some(found)}), which a '
                      'backbone file does not: convert the original weights '
                      'with tools/model_converters/vit2mmcvpt.py (it drops '
                      'heads)')
    if missing:
        causes.append(f'the file lacks {_some(missing)}{_count(missing)}')
    if unexpected:
        causes.append(f'the file has {_some(unexpected)}, which the model '
                      f'does not have{_count(unexpected)}')
    return causes
