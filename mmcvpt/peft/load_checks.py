"""Checks every state dict loaded into a prompted backbone goes through.

A tensor of another shape, prompts the model lacks, or registers on one
side only mean another config: refused in one line (CheckpointError)
instead of loading the rest around a randomly initialised tensor (init_cfg
loads are not strict and only warn).
"""
from torch import Tensor

from .pretrained_file import CheckpointError


def _shape_hint(key, ckpt_shape, own_shape) -> str:
    if key == 'prompts' and len(ckpt_shape) == 3:
        names = ('num_layers', 'num_prompts', 'embed_dims')
        diffs = [
            f'{n} {a} in the checkpoint, {b} in the config'
            for n, a, b in zip(names, ckpt_shape, own_shape) if a != b
        ]
        return 'the config differs: ' + ', '.join(diffs)
    if key == 'register_tokens' and len(ckpt_shape) == 3 and \
            ckpt_shape[2] == own_shape[2]:
        return (f'the checkpoint has {ckpt_shape[1]} register tokens; '
                f'set num_register_tokens={ckpt_shape[1]}')
    return ('the checkpoint is for another backbone arch/patch_size '
            '(check model.backbone in the config)')


def check_shapes(state_dict: dict, prefix: str, own_state: dict) -> None:
    """Every tensor but ``pos_embed`` (resized on load) has the model's
    shape."""
    for key, own in own_state.items():
        value = state_dict.get(prefix + key)
        if key == 'pos_embed' or not isinstance(value, Tensor) or \
                value.shape == own.shape:
            continue
        raise CheckpointError(
            f'{prefix}{key}: checkpoint shape {tuple(value.shape)} but '
            f'the model has {tuple(own.shape)}; '
            f'{_shape_hint(key, value.shape, own.shape)}')


def check_prompts(backbone, state_dict: dict, prefix: str) -> None:
    """Prompts in the file need prompts in the model."""
    key = prefix + 'prompts'
    if backbone.prompts is None and key in state_dict:
        raise CheckpointError(
            f'{key}: the checkpoint has prompts of shape '
            f'{tuple(state_dict[key].shape)} but the model has '
            'num_prompts=0; use the config it was trained with')


def _is_backbone_file(state_dict: dict, prefix: str) -> bool:
    """A pretrained backbone's tensors, not a PEFT state dict."""
    return prefix + 'pos_embed' in state_dict or \
        prefix + 'patch_embed.projection.weight' in state_dict


def check_positions(backbone, state_dict: dict, prefix: str) -> None:
    """Rotary (DINOv3) and absolute position embeddings do not mix: a file
    of the other kind is another family of backbone."""
    has_pos = prefix + 'pos_embed' in state_dict
    if backbone.pos_embed is None and has_pos:
        raise CheckpointError(
            f'{prefix}pos_embed: the checkpoint has an absolute position '
            'embedding (a DINOv2 or other ViT file) but the model uses '
            f'rotary positions (rope={backbone.rope_cfg}); a DINOv3 config '
            'needs a DINOv3 checkpoint converted by '
            'tools/model_converters/vit2mmcvpt.py')
    if backbone.pos_embed is not None and not has_pos and \
            _is_backbone_file(state_dict, prefix):
        raise CheckpointError(
            f'{prefix}pos_embed: the model has an absolute position '
            'embedding but the checkpoint has none (a DINOv3 file, rotary '
            "positions?); use a DINOv3 config (rope=dict(base=100.), "
            'configs/dinov3/)')


def check_registers(backbone, state_dict: dict, prefix: str) -> None:
    """Registers are part of the function: a backbone checkpoint (one with
    a pos_embed) with registers the model lacks, or without the registers
    the model has, would give wrong features."""
    key = prefix + 'register_tokens'
    if backbone.register_tokens is None and key in state_dict:
        shape = tuple(state_dict[key].shape)
        raise CheckpointError(
            f'{key}: the checkpoint has register tokens of shape {shape} '
            'but the model has num_register_tokens=0; set '
            f'num_register_tokens={shape[1]}')
    if backbone.register_tokens is not None and key not in state_dict and \
            _is_backbone_file(state_dict, prefix):
        raise CheckpointError(
            f'{key}: the model has num_register_tokens='
            f'{backbone.num_register_tokens} but the checkpoint has no '
            'register tokens; it is a model without registers (set '
            'num_register_tokens=0) or was converted without them')


def check_state_fits(backbone, state_dict: dict, prefix: str,
                     own_state: dict) -> None:
    """:func:`check_prompts`, :func:`check_positions`,
    :func:`check_registers`, :func:`check_shapes`."""
    check_prompts(backbone, state_dict, prefix)
    check_positions(backbone, state_dict, prefix)
    check_registers(backbone, state_dict, prefix)
    check_shapes(state_dict, prefix, own_state)
