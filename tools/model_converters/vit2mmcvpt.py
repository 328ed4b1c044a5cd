"""Convert a pretrained ViT into the key layout CVPTViT/VPTViT load.

That layout is mmpretrain's VisionTransformer (``patch_embed.projection``,
``layers.{i}.attn.qkv``, ``layers.{i}.ffn.layers.0.0``, ``ln1``...).
Supported inputs, told apart by their keys:

* ``google``: Google's ViT ``.npz`` (``Transformer/encoderblock_0/...``),
  e.g. the ImageNet-21k ``ViT-B_16.npz`` the CVPT paper starts from;
* ``timm``: timm state dicts (``blocks.0.attn.qkv.weight``...), ``.pth``/
  ``.bin`` or ``.safetensors``, including timm's DINOv2 (``ls1.gamma``,
  ``reg_token``, packed SwiGLU ``mlp.fc1``) and CLIP (``norm_pre``) models;
* ``dinov2``: the official DINOv2 files (``mask_token``,
  ``register_tokens``, ``blocks.N.ls1.gamma``, ``mlp.w12``/``mlp.w3`` for
  ViT-g; chunked ``blocks.C.N.`` training checkpoints too);
* ``openai-clip``: OpenAI's CLIP (``visual.transformer.resblocks.0...``), a
  state dict or the TorchScript ``.pt`` archive OpenAI distributes; the
  text tower and the image-text projection ``visual.proj`` are dropped;
* ``dinov3``: Meta's DINOv3 files (``dinov3_vit*16*_pretrain_lvd1689m-*.pth``:
  ``storage_tokens``, ``rope_embed.periods``, ``blocks.N.ls1.gamma``,
  ``attn.qkv.bias_mask``, SwiGLU ``mlp.w1``/``w2``/``w3`` for S+/H+/7B,
  the 7B's ``local_cls_norm``); ``timm-dinov3``: timm's DINOv3 models
  (``reg_token``, ``blocks.N.gamma_1``, ``attn.q_bias``/``v_bias``, SwiGLU
  ``mlp.fc1_g``/``fc1_x``/``fc2``). No position embedding: the backbone
  takes ``rope=dict(base=100.)``; the key bias DINOv3 masks is zeroed;
* ``mmseg``: mmseg VisionTransformer checkpoints
  (``layers.0.attn.attn.in_proj_weight``, with or without ``backbone.``);
* ``hf-vit``, ``hf-dinov2``, ``hf-dinov2-registers``, ``hf-clip``: the
  Hugging Face transformers models ``ViTModel`` (e.g.
  ``google/vit-base-patch16-224-in21k``), ``Dinov2Model``,
  ``Dinov2WithRegistersModel`` and ``CLIPVisionModel`` (or ``CLIPModel``,
  whose text tower is dropped), from ``model.safetensors`` or
  ``pytorch_model.bin``, with or without their task prefix (``vit.``,
  ``dinov2.``, ``vision_model.``); separate query/key/value weights are
  stacked into ``qkv``. The ONNX export of such a model (``.onnx``, needs
  ``pip install onnx``) is read through the same path: its unnamed MatMul
  weights are named after the bias added right after them.

LayerScale goes to ``layers.{i}.attn.gamma1`` / ``ffn.gamma2``, SwiGLU to
``ffn.w12`` / ``ffn.w3`` (``layer_cfgs=dict(ffn_type='swiglu_fused')``),
CLIP's ``ln_pre`` to ``pre_norm`` (``pre_norm=True``) and registers to one
``register_tokens`` (1, R, C) that takes no position embedding. Classifier
heads are dropped; the script prints what it dropped and the backbone
settings the weights need. Examples::

    python tools/model_converters/vit2mmcvpt.py ViT-B_16.npz \\
        pretrain/vit-b16_in21k.pth
    python tools/model_converters/vit2mmcvpt.py \\
        dinov2_vitb14_reg4_pretrain.pth pretrain/vit-b14_dinov2-reg4.pth
    python tools/model_converters/vit2mmcvpt.py ViT-B-16.pt \\
        pretrain/vit-b16_clip-openai.pth
"""
import argparse
import itertools
import math
import os.path as osp
import re
import sys
import zipfile
from typing import NamedTuple

import numpy as np
import torch
from mmpretrain.models import VisionTransformer

from mmcvpt.utils.io import atomic_torch_save

# Keys that belong to classification heads; never part of a backbone.
DROP = re.compile(r'^(head|pre_logits|fc_norm|head_drop|decode_head|'
                  r'auxiliary_head|neck|classifier|pooler)([./]|$)')
# Keys dropped for a stated reason (printed on their own line).
DROP_REASONS = [
    # OpenAI's names, then transformers' (text_model., text_projection.,
    # visual_projection.)
    (re.compile(r'^(transformer\.|token_embedding\.|ln_final\.|'
                r'text_model\.|text_projection\.|'
                r'(positional_embedding|text_projection|logit_scale)$)'),
     "CLIP's text tower"),
    (re.compile(r'^(visual\.proj$|visual_projection\.)'),
     "CLIP's image-text projection head (not part of the image encoder)"),
    (re.compile(r'^(input_resolution|context_length|vocab_size)$'),
     "CLIP's TorchScript metadata"),
    (re.compile(r'^mask_token$'),
     "DINOv2's mask token (used only by its masked-image pretraining)"),
    (re.compile(r'^dinov3:mask_token$'),
     "DINOv3's mask token (used only by its masked-image pretraining)"),
    (re.compile(r'^rope_embed\.periods$'),
     "DINOv3's rotary periods (recomputed from rope base 100; checked "
     'equal)'),
    (re.compile(r'^local_cls_norm\.'),
     "the 7B's class-token norm of local crops (pretraining only)"),
    (re.compile(r'^embeddings\.mask_token$'),
     'the mask token (used only by masked-image pretraining)'),
    (re.compile(r'^embeddings\.position_ids$'),
     "transformers' position-id buffer (0..N, not a weight)"),
    (re.compile(r'^decoder\.'), 'a task decoder (not part of the ViT)'),
]
LAYOUTS = (
    "Google ViT .npz ('Transformer/encoderblock_0/...'), timm "
    "('blocks.0.attn.qkv.weight', incl. its DINOv2 and CLIP models), "
    "official DINOv2 ('blocks.0.ls1.gamma' with 'mask_token' or "
    "'register_tokens'), OpenAI CLIP ('visual.transformer.resblocks.0."
    "attn.in_proj_weight'), DINOv3 ('storage_tokens', timm's 'reg_token' "
    "with 'blocks.0.gamma_1') or mmseg ViT keys "
    "('layers.0.attn.attn.in_proj_weight')")


class ConversionError(ValueError):
    pass


class Converted(NamedTuple):
    state: dict  # mmpretrain VisionTransformer keys -> float32 tensors
    layout: str
    dropped: list  # source keys not converted
    notes: list  # what the conversion did beyond renaming
    periods: int = 0  # DINOv3's rotary periods per head (d / 4), if stored


def _t(array):
    return torch.from_numpy(np.ascontiguousarray(array)).float()


def convert_google_npz(arrays: dict) -> tuple:
    """Google's flax ViT arrays -> (state_dict, dropped keys)."""
    out, used = {}, set()

    def take(key):
        used.add(key)
        return arrays[key]

    kernel = take('embedding/kernel')  # (p, p, 3, C), HWIO
    out['patch_embed.projection.weight'] = _t(kernel.transpose(3, 2, 0, 1))
    out['patch_embed.projection.bias'] = _t(take('embedding/bias'))
    out['cls_token'] = _t(take('cls'))
    out['pos_embed'] = _t(take('Transformer/posembed_input/pos_embedding'))
    num_layers = len({
        k.split('/')[1]
        for k in arrays if k.startswith('Transformer/encoderblock_')
    })
    for i in range(num_layers):
        src, dst = f'Transformer/encoderblock_{i}/', f'layers.{i}.'
        att = src + 'MultiHeadDotProductAttention_1/'
        for norm_src, norm_dst in (('LayerNorm_0', 'ln1'), ('LayerNorm_2',
                                                            'ln2')):
            out[dst + norm_dst + '.weight'] = _t(
                take(f'{src}{norm_src}/scale'))
            out[dst + norm_dst + '.bias'] = _t(take(f'{src}{norm_src}/bias'))
        # query/key/value kernels are (C, heads, d); biases (heads, d).
        qkv_w, qkv_b = [], []
        for name in ('query', 'key', 'value'):
            w = take(f'{att}{name}/kernel')
            qkv_w.append(w.reshape(w.shape[0], -1).T)
            qkv_b.append(take(f'{att}{name}/bias').reshape(-1))
        out[dst + 'attn.qkv.weight'] = _t(np.concatenate(qkv_w, axis=0))
        out[dst + 'attn.qkv.bias'] = _t(np.concatenate(qkv_b, axis=0))
        w = take(f'{att}out/kernel')  # (heads, d, C)
        out[dst + 'attn.proj.weight'] = _t(w.reshape(-1, w.shape[-1]).T)
        out[dst + 'attn.proj.bias'] = _t(take(f'{att}out/bias'))
        for j, fc in enumerate(('ffn.layers.0.0', 'ffn.layers.1')):
            out[f'{dst}{fc}.weight'] = _t(
                take(f'{src}MlpBlock_3/Dense_{j}/kernel').T)
            out[f'{dst}{fc}.bias'] = _t(
                take(f'{src}MlpBlock_3/Dense_{j}/bias'))
    out['ln1.weight'] = _t(take('Transformer/encoder_norm/scale'))
    out['ln1.bias'] = _t(take('Transformer/encoder_norm/bias'))
    return out, sorted(set(arrays) - used)


# timm and the official DINOv2 share these names (DINOv2's hub models are
# timm-style ViTs); the SwiGLU and chunk differences are normalised first.
TIMM_RULES = [
    (r'^patch_embed\.proj\.', 'patch_embed.projection.'),
    (r'^blocks\.(\d+)\.norm1\.', r'layers.\1.ln1.'),
    (r'^blocks\.(\d+)\.norm2\.', r'layers.\1.ln2.'),
    (r'^blocks\.(\d+)\.attn\.', r'layers.\1.attn.'),
    (r'^blocks\.(\d+)\.ls1\.gamma$', r'layers.\1.attn.gamma1.weight'),
    (r'^blocks\.(\d+)\.ls2\.gamma$', r'layers.\1.ffn.gamma2.weight'),
    (r'^blocks\.(\d+)\.mlp\.fc1\.', r'layers.\1.ffn.layers.0.0.'),
    (r'^blocks\.(\d+)\.mlp\.fc2\.', r'layers.\1.ffn.layers.1.'),
    (r'^blocks\.(\d+)\.mlp\.w(12|3)\.', r'layers.\1.ffn.w\2.'),
    (r'^norm_pre\.', 'pre_norm.'),
    (r'^norm\.', 'ln1.'),
    (r'^(register_tokens|reg_token)$', 'register_tokens'),
    (r'^(cls_token|pos_embed)$', r'\1'),
]

MMSEG_RULES = [
    (r'^patch_embed\.projection\.', 'patch_embed.projection.'),
    (r'^layers\.(\d+)\.ln([12])\.', r'layers.\1.ln\2.'),
    (r'^layers\.(\d+)\.attn\.attn\.in_proj_', r'layers.\1.attn.qkv.'),
    (r'^layers\.(\d+)\.attn\.attn\.out_proj\.', r'layers.\1.attn.proj.'),
    (r'^layers\.(\d+)\.ffn\.', r'layers.\1.ffn.'),
    (r'^ln1\.', 'ln1.'),
    (r'^(cls_token|pos_embed)$', r'\1'),
]

# OpenAI CLIP's image tower ('visual.' removed). Its class embedding and
# position embedding lack the batch axes; see convert_openai_clip.
CLIP_RULES = [
    (r'^conv1\.', 'patch_embed.projection.'),
    (r'^ln_pre\.', 'pre_norm.'),
    (r'^transformer\.resblocks\.(\d+)\.ln_([12])\.', r'layers.\1.ln\2.'),
    (r'^transformer\.resblocks\.(\d+)\.attn\.in_proj_',
     r'layers.\1.attn.qkv.'),
    (r'^transformer\.resblocks\.(\d+)\.attn\.out_proj\.',
     r'layers.\1.attn.proj.'),
    (r'^transformer\.resblocks\.(\d+)\.mlp\.c_fc\.',
     r'layers.\1.ffn.layers.0.0.'),
    (r'^transformer\.resblocks\.(\d+)\.mlp\.c_proj\.',
     r'layers.\1.ffn.layers.1.'),
    (r'^ln_post\.', 'ln1.'),
    (r'^(class_embedding|positional_embedding)$', r'\1'),
]


def _rename(state: dict, rules) -> tuple:
    out, dropped = {}, []
    for key, value in state.items():
        for pattern, repl in rules:
            new, n = re.subn(pattern, repl, key)
            if n:
                out[new] = value.float()
                break
        else:
            dropped.append(key)
    return out, dropped


def _unchunk_blocks(state: dict, notes: list) -> dict:
    """DINOv2 trained with ``block_chunks > 0`` names layer N of chunk C
    ``blocks.C.N.`` (N counts over all chunks); the hub files are flat."""
    chunked = re.compile(r'^blocks\.(\d+)\.(\d+)\.')
    if not any(chunked.match(k) for k in state):
        return state
    out = {}
    for key, value in state.items():
        new = chunked.sub(r'blocks.\2.', key)
        if new in out:
            raise ConversionError(f'chunked DINOv2 blocks: {key} and another '
                                  f'key both give {new}')
        out[new] = value
    chunks = {chunked.match(k)[1] for k in state if chunked.match(k)}
    notes.append(f'blocks came in {len(chunks)} chunks (blocks.C.N.), '
                 'numbered over all chunks')
    return out


def _unpack_timm_swiglu(state: dict, notes: list) -> dict:
    """timm's SwiGLUPacked (DINOv2 ViT-g) keeps DINOv2's fused w12/w3 under
    mlp.fc1/fc2: fc1 is twice as wide as fc2's input."""
    out, packed = dict(state), []
    for key in state:
        m = re.match(r'^(blocks\.\d+\.mlp\.)fc1\.weight$', key)
        fc2 = m and state.get(m[1] + 'fc2.weight')
        if fc2 is not None and state[key].shape[0] == 2 * fc2.shape[1]:
            for a, b in (('fc1', 'w12'), ('fc2', 'w3')):
                for p in ('weight', 'bias'):
                    if f'{m[1]}{a}.{p}' in out:
                        out[f'{m[1]}{b}.{p}'] = out.pop(f'{m[1]}{a}.{p}')
            packed.append(key)
    if packed:
        notes.append(f'{len(packed)} packed SwiGLU FFNs (mlp.fc1 = w12, '
                     'mlp.fc2 = w3)')
    return out


def _add_cls_pos_slot(out: dict, notes: list) -> None:
    """timm's ``no_embed_class`` models (DINOv2 + registers) keep no position
    for the class token (it is folded into cls_token); mmpretrain's ViT has a
    slot for it: a zero one gives the same sum."""
    pos = out.get('pos_embed')
    if pos is None or 'cls_token' not in out:
        return
    n = pos.shape[1]
    if math.isqrt(n)**2 == n and n > 1:
        out['pos_embed'] = torch.cat([pos.new_zeros(1, 1, pos.shape[2]), pos],
                                     dim=1)
        notes.append(f'pos_embed had no class-token slot ({n} = '
                     f'{math.isqrt(n)}^2 patches; timm no_embed_class): '
                     'added a zero one, cls_token already holds its position')


def convert_timm_like(state: dict) -> tuple:
    """timm / official DINOv2 -> (state_dict, dropped keys, notes)."""
    notes = []
    state = _unpack_timm_swiglu(_unchunk_blocks(state, notes), notes)
    out, dropped = _rename(state, TIMM_RULES)
    _add_cls_pos_slot(out, notes)
    return out, dropped, notes


DINOV3_RULES = [
    (r'^storage_tokens$', 'register_tokens'),
    (r'^blocks\.(\d+)\.gamma_1$', r'layers.\1.attn.gamma1.weight'),
    (r'^blocks\.(\d+)\.gamma_2$', r'layers.\1.ffn.gamma2.weight'),
] + TIMM_RULES
DINOV3_ROPE_BASE = 100.


def _dinov3_periods(periods: torch.Tensor) -> None:
    """Meta's files store the rotary periods (bfloat16); the backbone
    recomputes them from ``rope=dict(base=100.)``: they must agree."""
    d4 = periods.numel()
    expect = DINOV3_ROPE_BASE**(torch.arange(d4, dtype=torch.float32) / d4)
    if not torch.allclose(periods.float(), expect.to(periods.dtype).float(),
                          rtol=1e-2):
        raise ConversionError(
            f'rope_embed.periods {periods.float()[:4].tolist()}... are not '
            f'those of rope base {DINOV3_ROPE_BASE:g} ({expect[:4].tolist()}'
            '...) that DINOv3 and the converted backbone use')


def _dinov3_qkv_bias(state: dict, notes: list) -> dict:
    """One ``qkv.bias`` per block with a zero key bias: Meta's bias times
    its ``bias_mask`` (1 on q and v, 0 on k), or timm's q_bias/v_bias."""
    out, masked, stacked = dict(state), 0, 0
    for key in state:
        m = re.match(r'^(blocks\.\d+\.attn\.)(qkv\.bias_mask|q_bias)$', key)
        if not m:
            continue
        if m[2] == 'q_bias':
            q, v = out.pop(key), out.pop(m[1] + 'v_bias')
            out[m[1] + 'qkv.bias'] = torch.cat([q, torch.zeros_like(q), v])
            stacked += 1
            continue
        mask = out.pop(key).float()
        third = mask.numel() // 3
        want = torch.ones_like(mask)
        want[third:2 * third] = 0
        if not torch.equal(mask, want):
            raise ConversionError(
                f'{key}: expected 1 on the query and value biases and 0 on '
                'the key bias (DINOv3 masks the key bias), got another mask')
        out[m[1] + 'qkv.bias'] = out[m[1] + 'qkv.bias'] * mask.to(
            out[m[1] + 'qkv.bias'].dtype)
        masked += 1
    if masked:
        notes.append(f'{masked} key biases zeroed by their bias_mask (DINOv3 '
                     'masks the key bias)')
    if stacked:
        notes.append(f'{stacked} q_bias/v_bias pairs stacked into qkv.bias '
                     'with a zero key bias')
    return out


def _dinov3_swiglu(state: dict, notes: list) -> dict:
    """SwiGLU as mmpretrain's fused ``w12``: Meta's w1/w2 or timm's
    fc1_g/fc1_x (gate first), and timm's fc2 -> w3."""
    out, fused = dict(state), 0
    for key in state:
        m = re.match(r'^(blocks\.\d+\.mlp\.)(w1|fc1_g)\.weight$', key)
        if not m:
            continue
        gate, lin = ('w1', 'w2') if m[2] == 'w1' else ('fc1_g', 'fc1_x')
        for p in ('weight', 'bias'):
            if f'{m[1]}{gate}.{p}' in out:
                out[f'{m[1]}w12.{p}'] = torch.cat([
                    out.pop(f'{m[1]}{gate}.{p}'),
                    out.pop(f'{m[1]}{lin}.{p}')
                ])
            if m[2] == 'fc1_g' and f'{m[1]}fc2.{p}' in out:
                out[f'{m[1]}w3.{p}'] = out.pop(f'{m[1]}fc2.{p}')
        fused += 1
    if fused:
        notes.append(f'{fused} SwiGLU FFNs fused into w12 (gate, then value) '
                     '+ w3')
    return out


def convert_dinov3(state: dict) -> tuple:
    """Meta's or timm's DINOv3 -> (state_dict, dropped keys, notes)."""
    if any(k.startswith('cls_norm.') for k in state):
        raise ConversionError(
            'cls_norm.*: DINOv3 with a separate norm of the class and '
            'storage tokens (untie_cls_and_patch_norms) is not supported; '
            "the released checkpoints normalise every token with 'norm'")
    notes = ['no position embedding: rotary positions, '
             f'rope=dict(base={DINOV3_ROPE_BASE:g}) in the backbone']
    state = dict(state)
    if 'mask_token' in state:  # told apart from DINOv2's (DROP_REASONS)
        state['dinov3:mask_token'] = state.pop('mask_token')
    if 'rope_embed.periods' in state:
        _dinov3_periods(state['rope_embed.periods'])
    state = _dinov3_swiglu(_dinov3_qkv_bias(state, notes), notes)
    out, dropped = _rename(state, DINOV3_RULES)
    return out, dropped, notes


def _add_clip_batch_axes(out: dict) -> None:
    """CLIP's class embedding (C, ) and position embedding (1 + N, C), in
    OpenAI's and transformers' files alike -> cls_token / pos_embed."""
    out['cls_token'] = out.pop('class_embedding').reshape(1, 1, -1)
    out['pos_embed'] = out.pop('positional_embedding').unsqueeze(0)


def convert_openai_clip(state: dict) -> tuple:
    """OpenAI CLIP -> (image-tower state_dict, dropped keys)."""
    visual = {k[len('visual.'):]: v for k, v in state.items()
              if k.startswith('visual.')}
    missing = {'class_embedding', 'positional_embedding'} - set(visual)
    if missing:
        raise ConversionError(f'OpenAI CLIP image tower without visual.'
                              f'{", visual.".join(sorted(missing))}')
    out, dropped = _rename(visual, CLIP_RULES)
    _add_clip_batch_axes(out)
    dropped = ['visual.' + k for k in dropped]
    return out, dropped + [k for k in state if not k.startswith('visual.')]


# Hugging Face transformers: ViTModel, Dinov2Model(+WithRegisters) and
# CLIPVisionModel, once their task prefix is gone and q/k/v are stacked.
# ViT/DINOv2 name blocks encoder.layer.N, CLIP encoder.layers.N.
_HF_BLOCK = r'^encoder\.layers?\.(\d+)\.'
HF_RULES = [
    (r'^embeddings\.patch_embeddings?\.(projection\.)?',
     'patch_embed.projection.'),
    (r'^embeddings\.(cls_token|register_tokens)$', r'\1'),
    (r'^embeddings\.position_embeddings$', 'pos_embed'),
    (r'^embeddings\.class_embedding$', 'class_embedding'),
    (r'^embeddings\.position_embedding\.weight$', 'positional_embedding'),
    (r'^pre_layrnorm\.', 'pre_norm.'),
    (_HF_BLOCK + r'(layernorm_before|norm1|layer_norm1)\.', r'layers.\1.ln1.'),
    (_HF_BLOCK + r'(layernorm_after|norm2|layer_norm2)\.', r'layers.\1.ln2.'),
    (_HF_BLOCK + r'(attention\.attention|self_attn)\.qkv\.',
     r'layers.\1.attn.qkv.'),
    (_HF_BLOCK + r'(attention\.output\.dense|self_attn\.out_proj)\.',
     r'layers.\1.attn.proj.'),
    (_HF_BLOCK + r'layer_scale1\.lambda1$', r'layers.\1.attn.gamma1.weight'),
    (_HF_BLOCK + r'layer_scale2\.lambda1$', r'layers.\1.ffn.gamma2.weight'),
    (_HF_BLOCK + r'(intermediate\.dense|mlp\.fc1)\.',
     r'layers.\1.ffn.layers.0.0.'),
    (_HF_BLOCK + r'(output\.dense|mlp\.fc2)\.', r'layers.\1.ffn.layers.1.'),
    (_HF_BLOCK + r'mlp\.weights_in\.', r'layers.\1.ffn.w12.'),
    (_HF_BLOCK + r'mlp\.weights_out\.', r'layers.\1.ffn.w3.'),
    (r'^(layernorm|post_layernorm)\.', 'ln1.'),
]
_HF_QKV = re.compile(r'^(.*)\.(query|key|value|q_proj|k_proj|v_proj)\.'
                     r'(weight|bias)$')
_HF_PREFIX = re.compile(
    r'^(.*?)embeddings\.(patch_embeddings\.projection|patch_embedding)\.'
    r'weight$')


def _hf_prefix(keys) -> str:
    """'' or the task model's prefix ('vit.', 'dinov2.', 'vision_model.')."""
    found = {m[1] for m in map(_HF_PREFIX.match, keys) if m}
    if len(found) != 1:
        raise ConversionError(
            'Hugging Face layout with '
            f'{len(found)} patch embeddings ({sorted(found)}); expected one '
            'image encoder')
    return found.pop()


def _stack_hf_qkv(state: dict) -> dict:
    """Separate query/key/value (q_proj/k_proj/v_proj) -> one ``qkv``."""
    out, parts = {}, {}
    for key, value in state.items():
        m = _HF_QKV.match(key)
        if m:
            parts.setdefault((m[1], m[3]), {})[m[2][0]] = value
        else:
            out[key] = value
    for (module, param), qkv in parts.items():
        if sorted(qkv) != ['k', 'q', 'v']:
            raise ConversionError(f'{module}: {param} of {sorted(qkv)} only; '
                                  'query, key and value are all needed')
        out[f'{module}.qkv.{param}'] = torch.cat(
            [qkv['q'], qkv['k'], qkv['v']])
    return out


def convert_hf(state: dict) -> tuple:
    """Hugging Face ViT/DINOv2/CLIP -> (state_dict, dropped keys, notes)."""
    prefix = _hf_prefix(state)
    inner = {k[len(prefix):]: v for k, v in state.items()
             if k.startswith(prefix)}
    others = [k for k in state if not k.startswith(prefix)]
    out, dropped = _rename(_stack_hf_qkv(inner), HF_RULES)
    notes = ['query/key/value weights stacked into qkv']
    if 'class_embedding' in out:  # CLIP (and no patch-embedding bias)
        _add_clip_batch_axes(out)
    if prefix:
        notes.append(f"task prefix '{prefix}' removed")
    notes.append("the LayerNorm eps is in the model's config.json "
                 "(layer_norm_eps), not in the weights: CVPTViT's default "
                 "is 1e-6 (ViT, DINOv2); CLIP needs norm_cfg=dict(type='LN', "
                 'eps=1e-5)')
    return out, dropped + others, notes


def read_onnx(path: str) -> dict:
    """The initializers of an ONNX export of a Hugging Face ViT, named.

    torch.onnx names the parameters it keeps (biases, norms, tokens) but
    stores each linear weight as an unnamed ``MatMul`` input of shape
    (in, out): it is named after the bias of the ``Add`` that follows its
    MatMul and transposed to nn.Linear's (out, in). The position embedding
    comes as two unnamed constants, (1, 1, C) for the class token and
    (1, n*n, C) for the patch grid, concatenated here in that order.
    """
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise ConversionError('reading an .onnx file needs the onnx package: '
                              'pip install onnx') from None
    graph = onnx.load(path).graph
    arrays = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    consumers = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    out, used = {}, set()
    for node in graph.node:
        weight = next((i for i in node.input if i in arrays), None)
        if node.op_type != 'MatMul' or weight is None:
            continue
        bias = [i for c in consumers.get(node.output[0], [])
                if c.op_type == 'Add' for i in c.input
                if i in arrays and i.endswith('.bias')]
        if len(bias) != 1:
            raise ConversionError(f'MatMul weight {weight} is not '
                                  'followed by one named bias; cannot name it')
        out[bias[0][:-len('bias')] + 'weight'] = _t(arrays[weight].T)
        used.add(weight)
    unnamed = {k: v for k, v in arrays.items()
               if k not in used and k.startswith('onnx::')}
    cls = [k for k in arrays if k.endswith('embeddings.cls_token')]
    C = arrays[cls[0]].shape[-1] if len(cls) == 1 else None
    cls_pos = [k for k, v in unnamed.items() if v.shape == (1, 1, C)]
    grid_pos = [k for k, v in unnamed.items() if v.ndim == 3 and
                v.shape[-1] == C and v.shape[1] > 1 and
                math.isqrt(v.shape[1])**2 == v.shape[1]]
    if len(cls_pos) != 1 or len(grid_pos) != 1:
        raise ConversionError(
            'expected one (1, 1, C) and one (1, n*n, C) unnamed '
            f'position-embedding constant next to embeddings.cls_token, got '
            f'{len(cls_pos)} and {len(grid_pos)}')
    out[cls[0][:-len('cls_token')] + 'position_embeddings'] = _t(
        np.concatenate([unnamed[cls_pos[0]], unnamed[grid_pos[0]]], axis=1))
    out.update({k: _t(v) for k, v in arrays.items()
                if k not in used and not k.startswith('onnx::')})
    return out


def _has(keys, pattern: str) -> bool:
    return any(re.match(pattern, k) for k in keys)


def detect_layout(keys) -> str:
    """The source layout's name, or ConversionError saying why none fits."""
    keys = set(keys)
    if 'Transformer/encoder_norm/scale' in keys:
        return 'google'
    if _has(keys, r'visual\.transformer\.resblocks\.'):
        return 'openai-clip'
    if _has(keys, r'transformer\.resblocks\.') and \
            'token_embedding.weight' in keys:
        if _has(keys, r'visual\.'):
            first = sorted(k for k in keys if k.startswith('visual.'))[0]
            raise ConversionError(
                'OpenAI CLIP whose image tower is not a ViT (keys like '
                f"'{first}', no 'visual.transformer.resblocks.*': the ResNet "
                'CLIPs); only ViT image towers convert')
        raise ConversionError(
            "OpenAI CLIP text tower only ('transformer.resblocks.*', "
            "'token_embedding.weight') and no image tower ('visual.*' keys): "
            'nothing to convert; use the full CLIP checkpoint (e.g. '
            'ViT-B-16.pt)')
    if 'storage_tokens' in keys and _has(keys, r'blocks\.\d+\.attn\.qkv\.'):
        return 'dinov3'
    if 'reg_token' in keys and 'pos_embed' not in keys and _has(
            keys, r'blocks\.\d+\.gamma_1$'):
        return 'timm-dinov3'
    if _has(keys, r'blocks\.(\d+\.)?\d+\.attn\.qkv\.'):
        official = {'mask_token', 'register_tokens'} & keys or _has(
            keys, r'blocks\.(\d+\.)?\d+\.mlp\.w12\.') or _has(
                keys, r'blocks\.\d+\.\d+\.')
        return 'dinov2' if official else 'timm'
    if _has(keys, r'layers\.0\.attn\.attn\.in_proj'):
        return 'mmseg'
    if any(map(_HF_PREFIX.match, keys)):
        if _has(keys, r'(.*\.)?embeddings\.patch_embedding\.'):
            return 'hf-clip'
        if _has(keys, r'(.*\.)?embeddings\.register_tokens$'):
            return 'hf-dinov2-registers'
        if _has(keys, r'(.*\.)?encoder\.layer\.\d+\.layer_scale1\.'):
            return 'hf-dinov2'
        return 'hf-vit'
    raise ConversionError(
        f'unknown checkpoint layout: expected {LAYOUTS}; no known key '
        f'pattern among the {len(keys)} keys, first ones: {sorted(keys)[:5]}')


def _is_torchscript(path: str) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as f:  # torch.save zips have neither
        names = [n.split('/', 1)[-1] for n in f.namelist()]
    return any(n == 'constants.pkl' or n.startswith('code/') for n in names)


def load_source(path: str) -> dict:
    """Read a checkpoint as a flat dict name -> array/tensor."""
    if not osp.isfile(path):
        raise ConversionError(f'input checkpoint not found: {path}')
    if path.endswith('.npz'):
        with np.load(path) as f:
            return {k: f[k] for k in f.files}
    if path.endswith('.safetensors'):
        from safetensors.torch import load_file
        return load_file(path)
    if path.endswith('.onnx'):
        return read_onnx(path)
    if _is_torchscript(path):
        # OpenAI's CLIP .pt files are TorchScript archives, which
        # torch.load(weights_only=True) refuses. torch.jit.load reads
        # TorchScript, not arbitrary pickled Python, but only load archives
        # from a source you trust (OpenAI's URLs).
        print(f'{path}: TorchScript archive, read with torch.jit.load')
        ckpt = torch.jit.load(path, map_location='cpu').state_dict()
    else:
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
    for key in ('state_dict', 'model', 'module'):
        if isinstance(ckpt, dict) and isinstance(ckpt.get(key), dict):
            ckpt = ckpt[key]
            break
    prefixes = ('backbone.', 'module.')
    return {
        next((k[len(p):] for p in prefixes if k.startswith(p)), k): v
        for k, v in ckpt.items() if torch.is_tensor(v)
    }


def _check_complete(out: dict, layout: str) -> None:
    need = ('patch_embed.projection.weight', 'cls_token', 'layers.0.attn.'
            'qkv.weight') + (() if 'dinov3' in layout else ('pos_embed', ))
    missing = [k for k in need if k not in out]
    if missing:
        raise ConversionError(
            f'{layout} layout without {", ".join(missing)} after conversion; '
            'the checkpoint is incomplete or not a ViT image encoder')


def convert(state: dict) -> Converted:
    """Detect the layout of ``state`` and rename it to mmpretrain's keys."""
    layout = detect_layout(state)
    heads = [k for k in state if DROP.match(k)]
    state = {k: v for k, v in state.items() if k not in heads}
    notes = []
    if layout == 'google':
        out, dropped = convert_google_npz(state)
    elif layout in ('timm', 'dinov2'):
        out, dropped, notes = convert_timm_like(state)
    elif layout in ('dinov3', 'timm-dinov3'):
        out, dropped, notes = convert_dinov3(state)
    elif layout == 'openai-clip':
        out, dropped = convert_openai_clip(state)
    elif layout.startswith('hf-'):
        out, dropped, notes = convert_hf(state)
    else:
        out, dropped = _rename(state, MMSEG_RULES)
    _check_complete(out, layout)
    periods = state.get('rope_embed.periods')
    return Converted(out, layout,
                     sorted(heads) + dropped, notes,
                     0 if periods is None else periods.numel())


def num_layers_of(state: dict) -> int:
    return len({k.split('.')[1] for k in state if k.startswith('layers.')})


def features(state: dict) -> list:
    """What the weights need beyond a plain ViT (printed and saved)."""
    found = []
    if 'layers.0.attn.gamma1.weight' in state:
        found.append('LayerScale')
    if 'register_tokens' in state:
        found.append(f"{state['register_tokens'].shape[1]} register tokens")
    if 'layers.0.ffn.w12.weight' in state:
        found.append('SwiGLU FFN')
    if 'pre_norm.weight' in state:
        found.append('pre-norm')
    if 'pos_embed' not in state:
        found.append('rotary positions')
    return found


def _dinov3_settings(state: dict, arch: dict, head_dims) -> list:
    """DINOv3 arguments: the arch by name (its FFN type and qkv bias come
    with it), patch 16, LayerScale, storage tokens, rope, LN eps 1e-5."""
    from mmcvpt.models.backbones.dinov3_archs import DINOV3_ARCHS
    width = {k: arch[k] for k in ('embed_dims', 'num_layers',
                                  'feedforward_channels')}
    name = next((n for n, a in DINOV3_ARCHS.items()
                 if all(a[k] == v for k, v in width.items())), None)
    has_bias = 'layers.0.attn.qkv.bias' in state
    if name is None:
        arch = dict(arch,
                    num_heads=max(arch['embed_dims'] // (head_dims or 64), 1))
        text = ', '.join(f'{k}={v}' for k, v in arch.items())
        args = [f'arch=dict({text})']
        if 'layers.0.ffn.w12.weight' in state:
            args.append("layer_cfgs=dict(ffn_type='swiglu_fused')")
        if not has_bias:
            args.append('qkv_bias=False')
    else:
        args = [f"arch='{name}'"]
        if has_bias != DINOV3_ARCHS[name].get('qkv_bias', True):
            args.append(f'qkv_bias={has_bias}')
    args += [
        f"patch_size={state['patch_embed.projection.weight'].shape[-1]}",
        'layer_scale_init_value=1e-5',
        f"num_register_tokens={state['register_tokens'].shape[1]}",
        f'rope=dict(base={DINOV3_ROPE_BASE:g}.)',
        "norm_cfg=dict(type='LN', eps=1e-5)"
    ]
    return args


def backbone_settings(state: dict, layout: str, head_dims=None) -> str:
    """The CVPTViT/VPTViT arguments these weights need, as config text
    (``head_dims``: known from DINOv3's rotary periods, else 64 assumed).
    """
    C = state['cls_token'].shape[-1]
    kernel = state['patch_embed.projection.weight'].shape[-1]
    if 'layers.0.ffn.w3.weight' in state:
        hidden = state['layers.0.ffn.w3.weight'].shape[1]
        # mmpretrain's SwiGLUFFNFused turns feedforward_channels f into
        # (int(f * 2 / 3) + 7) // 8 * 8 hidden channels, as DINOv2's.
        ff = next(f for f in itertools.chain([hidden * 3 // 2],
                                             range(hidden, 2 * hidden))
                  if (int(f * 2 / 3) + 7) // 8 * 8 == hidden)
    else:
        ff = state['layers.0.ffn.layers.0.0.weight'].shape[0]
    arch = dict(
        embed_dims=C,
        num_layers=num_layers_of(state),
        num_heads=max(C // 64, 1),
        feedforward_channels=ff)
    if 'dinov3' in layout:
        args = _dinov3_settings(state, arch, head_dims)
        if head_dims or not args[0].startswith('arch=dict'):
            return ', '.join(args)  # heads from the periods or the arch
        return ', '.join(args) + (' (num_heads is not stored in the weights:'
                                  ' 64-dim heads assumed)')
    names = [n for n, a in VisionTransformer.arch_zoo.items() if a == arch]
    names.sort(key=lambda n: (not n.startswith('dinov2'), len(n)))
    text = ', '.join(f'{k}={v}' for k, v in arch.items())
    args = [
        f"arch='{names[0]}'" if names else f'arch=dict({text})',
        f'patch_size={kernel}'
    ]
    if 'layers.0.attn.gamma1.weight' in state:
        args.append('layer_scale_init_value=1e-5')
    if 'register_tokens' in state:
        args.append(
            f"num_register_tokens={state['register_tokens'].shape[1]}")
    if 'layers.0.ffn.w12.weight' in state:
        args.append("layer_cfgs=dict(ffn_type='swiglu_fused')")
    if 'pre_norm.weight' in state:
        args += ['pre_norm=True', "norm_cfg=dict(type='LN', eps=1e-5)"]
        # Not in the weights either: OpenAI trained with QuickGELU, most
        # other CLIP trainings (open_clip's LAION/DFN models) with GELU.
        args.append("layer_cfgs=dict(act_cfg=dict(type='mmpretrain."
                    "QuickGELU')) for OpenAI's weights (GELU, the default, "
                    'for CLIP models trained by others)')
    return ', '.join(args) + (' (num_heads is not stored in the weights: '
                              '64-dim heads assumed)')


def _collapse(keys) -> str:
    """'transformer.resblocks.0.x', ... 11.y -> 'transformer.resblocks.
    {0-11}.*'."""
    groups = {}
    for key in keys:
        m = re.match(r'^(.*?)\.(\d+)\.', key)
        if m:
            groups.setdefault(m[1], set()).add(int(m[2]))
        else:
            groups.setdefault(re.sub(r'\.(weight|bias)$', '.*', key), set())
    return ', '.join(
        f'{name}.{{{min(i)}-{max(i)}}}.*' if i else name
        for name, i in sorted(groups.items()))


def describe_dropped(dropped) -> list:
    """Printed lines: one per stated reason, then the other keys."""
    lines, rest = [], list(dropped)
    for pattern, reason in DROP_REASONS:
        keys = [k for k in rest if pattern.match(k)]
        if keys:
            rest = [k for k in rest if k not in keys]
            shown = [k.split(':')[-1] for k in keys]  # 'dinov3:mask_token'
            lines.append(f'dropped {reason}: {len(keys)} '
                         f'key{"s" * (len(keys) > 1)} ({_collapse(shown)})')
    if rest:
        lines.append(f'dropped {len(rest)} keys: {", ".join(rest)}')
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        'src',
        help='Google .npz, timm .pth/.safetensors, official DINOv2 .pth, '
        'OpenAI CLIP .pt (TorchScript) or mmseg ViT checkpoint')
    parser.add_argument('dst', help='output .pth (mmpretrain ViT layout)')
    args = parser.parse_args(argv)
    try:
        result = convert(load_source(args.src))
    except (ConversionError, KeyError) as e:
        sys.exit(f'vit2mmcvpt: {args.src}: {e}')
    state, layout = result.state, result.layout
    extra = ''.join(f', {f}' for f in features(state))
    pos = state.get('pos_embed')
    pos = 'no pos_embed' if pos is None else f'pos_embed {tuple(pos.shape)}'
    print(f'{args.src}: {layout} layout, {num_layers_of(state)} layers, '
          f'{len(state)} tensors mapped, embed dims '
          f'{state["cls_token"].shape[-1]}, {pos}{extra}')
    for note in result.notes:
        print(note)
    for line in describe_dropped(result.dropped):
        print(line)
    periods = result.periods
    settings = backbone_settings(state, layout, periods and 4 * periods)
    print(f'backbone settings: {settings}')
    if 'pos_embed' in state:
        grid = math.isqrt(state['pos_embed'].shape[1] - 1)
        kernel = state['patch_embed.projection.weight'].shape[-1]
        print(f'pos_embed is for {grid * kernel} px ({grid}x{grid} patches); '
              "the backbone resizes it to the config's img_size on load")
    else:
        print('rotary positions: computed for every input size, nothing to '
              'resize')
    atomic_torch_save(
        dict(
            state_dict=state,
            meta=dict(source=args.src, layout=layout,
                      backbone_settings=settings)), args.dst)
    print(f'saved {args.dst}')


if __name__ == '__main__':
    main()
