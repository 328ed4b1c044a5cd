"""CVPT / VPT-deep on DINOv3-style backbones: rotary positions on the patch
tokens (no pos_embed), 4 storage tokens, LayerScale, patch 16.

Every forward is compared with the float64 plain-torch reference of
``tests/test_models/reference.py`` (rotation written with complex numbers);
timm's own DINOv3 model is the reference of the converter tests
(tests/test_tools/test_vit2mmcvpt_dinov3.py).
"""
import copy

import pytest
import torch
import torch.nn.functional as F

from mmcvpt.models import PROMPT_POSITIONS, CVPTViT, VPTViT
from mmcvpt.models.backbones.dinov3_archs import DINOV3_ARCHS
from mmcvpt.peft import CheckpointError, peft_signature
from tests.test_models.reference import ref_vit
from tests.test_models.test_backbones.test_foundation_vit import (
    _randomise_, set_impl)

ARCH = dict(embed_dims=48, num_layers=3, num_heads=4, feedforward_channels=96)
DINOV3 = dict(patch_size=16, layer_scale_init_value=1e-5,
              num_register_tokens=4, rope=dict(base=100.),
              norm_cfg=dict(type='LN', eps=1e-5))
IMG = (48, 64)  # 3 x 4 patches
REF = dict(eps=1e-5, rope_base=100.)


def _build(cls=CVPTViT, **kwargs):
    torch.manual_seed(0)
    model = cls(arch=ARCH, img_size=IMG, **dict(DINOV3, **kwargs))
    _randomise_(model).eval()  # BaseBackbone.train() returns None
    return model


def _image(size=IMG, dtype=torch.float64):
    return torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(2),
                       dtype=dtype)


def _ref(model, x, **kwargs):
    return ref_vit(x, model.state_dict(), ARCH['num_layers'],
                   ARCH['num_heads'], 16, **REF, **kwargs)


@pytest.mark.parametrize('size', [IMG, (80, 32)])
def test_plain_forward_equals_reference(size):
    model = _build(num_prompts=0, out_type='raw').double()
    assert model.pos_embed is None and 'pos_embed' not in model.state_dict()
    x = _image(size)
    with torch.no_grad():
        out = model(x)[0]
        ref = _ref(model, x)
        # the same weights without the rotation: positions matter
        unrotated = ref_vit(x, dict(model.state_dict(), pos_embed=0),
                            ARCH['num_layers'], ARCH['num_heads'], 16,
                            eps=1e-5)
    hw = size[0] // 16 * (size[1] // 16)
    assert out.shape == ref.shape == (2, 1 + hw, 48)
    assert (out - ref).abs().max() < 1e-10
    assert (out - unrotated).abs().max() > 1e-2


@pytest.mark.parametrize('position', PROMPT_POSITIONS)
def test_cvpt_rotated_queries_equal_reference(position):
    """cross_attn_rope=True (default): the patch queries rotated, prompt
    keys not; 'auto' runs direct."""
    model = _build(num_prompts=5, prompt_position=position,
                   out_type='raw').double()
    assert model.cross_attn_rope
    x = _image()
    with torch.no_grad():
        out = model(x)[0]
        set_impl(model, 'direct')
        direct = model(x)[0]
        ref = _ref(model, x, prompts=model.prompts, position=position)
        unrotated = _ref(model, x, prompts=model.prompts, position=position,
                         ca_rope=False)
    assert (out - direct).abs().max() == 0
    assert (out - ref).abs().max() < 1e-10
    assert (ref - unrotated).abs().max() > 1e-4  # the setting matters


@pytest.mark.parametrize('position', PROMPT_POSITIONS)
def test_cvpt_unrotated_queries_fold(position):
    """cross_attn_rope=False: unrotated queries; folded == direct."""
    model = _build(num_prompts=5, prompt_position=position, out_type='raw',
                   cross_attn_rope=False).double()
    x = _image()
    outs = {}
    with torch.no_grad():
        for impl in ('folded', 'direct'):
            set_impl(model, impl)
            outs[impl] = model(x)[0]
        ref = _ref(model, x, prompts=model.prompts, position=position,
                   ca_rope=False)
    assert (outs['folded'] - outs['direct']).abs().max() < 1e-10
    assert (outs['folded'] - ref).abs().max() < 1e-10


def test_vpt_prompts_are_position_free():
    model = _build(cls=VPTViT, num_prompts=3, out_type='raw').double()
    x = _image()
    with torch.no_grad():
        out = model(x)[0]
        ref = _ref(model, x, prompts=model.prompts, vpt=True)
    assert (out - ref).abs().max() < 1e-10


@pytest.mark.parametrize('rope', [True, False])
def test_float32_per_sample_dropout_and_fp16_rotation(rope):
    model = _build(num_prompts=5, out_type='raw', prompt_dropout=0.3,
                   cross_attn_rope=rope)
    x = _image(dtype=torch.float32)
    with torch.no_grad():
        ref = _ref(copy.deepcopy(model).double(), x.double(),
                   prompts=model.prompts.double(), ca_rope=rope,
                   position='after_attn')
        assert (model(x)[0] - ref).abs().max() < 1e-4
        half = copy.deepcopy(model).half()
        assert list(half.rope.buffers()) == []  # nothing to round
        model.train()
        torch.manual_seed(3)
        a = model(x)[0]
        torch.manual_seed(4)
        b = model(x)[0]
    assert (a - b).abs().max() > 1e-4  # per-sample masks drawn


@pytest.mark.parametrize('cls,kwargs', [(CVPTViT, dict(cross_attn_rope=True)),
                                        (CVPTViT, dict(cross_attn_rope=False)),
                                        (VPTViT, {})])
def test_frozen_tensors_bit_identical_after_steps(cls, kwargs):
    model = _build(cls=cls, num_prompts=4, drop_path_rate=0.1, **kwargs)
    model.train()
    head = torch.nn.Linear(48, 3)
    before = copy.deepcopy(model.state_dict())
    opt = torch.optim.AdamW(
        list(model.parameters()) + list(head.parameters()), lr=0.1,
        weight_decay=0.05)
    for _ in range(2):
        out = model(_image(dtype=torch.float32))[0]
        loss = F.cross_entropy(head(out), torch.tensor([0, 2]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {'prompts'}
    assert 'register_tokens' in before and 'pos_embed' not in before


def test_archs_and_their_ffn_and_bias():
    expect = {  # name: (C, L, heads, FFN hidden, SwiGLU, qkv bias)
        'dinov3-s': (384, 12, 6, 1536, False, True),
        'dinov3-s+': (384, 12, 6, 1536, True, True),
        'dinov3-b': (768, 12, 12, 3072, False, True),
        'dinov3-l': (1024, 24, 16, 4096, False, True),
        'dinov3-h+': (1280, 32, 20, 5120, True, True),
        'dinov3-7b': (4096, 40, 32, 8192, True, False),
    }
    assert set(DINOV3_ARCHS) == set(expect)
    for name, (C, L, h, hidden, swiglu, bias) in expect.items():
        with torch.device('meta'):
            model = CVPTViT(arch=name, img_size=32, num_prompts=2,
                            out_indices=[L - 1], **DINOV3)
        layer = model.layers[0]
        assert (model.embed_dims, model.num_layers, model.num_heads) == \
            (C, L, h), name
        w3 = layer.ffn.w3 if swiglu else layer.ffn.layers[1]
        assert w3.weight.shape[1] == hidden, name
        assert (layer.attn.qkv.bias is not None) == bias, name
        assert model.rope.head_dims == C // h
    # the config still wins over the arch's defaults
    with torch.device('meta'):
        model = CVPTViT(arch='dinov3-7b', img_size=32, qkv_bias=True,
                        out_indices=[39], **DINOV3)
    assert model.layers[0].attn.qkv.bias is not None


def test_signature_records_rope():
    sig = peft_signature(_build(num_prompts=2))
    assert sig['rope_cfg'] == dict(base=100.)
    assert 'cross_attn_rope' not in sig  # at its default
    sig = peft_signature(_build(num_prompts=2, cross_attn_rope=False))
    assert sig['cross_attn_rope'] is False
    assert 'rope_cfg' not in peft_signature(
        CVPTViT(arch=ARCH, img_size=32, patch_size=16, num_prompts=2))


def test_bad_arguments_one_line():
    with pytest.raises(ValueError, match=r"^cross_attn_impl='folded' cannot "
                       r'rotate the queries .*cross_attn_rope=False$'):
        _build(num_prompts=2, cross_attn_impl='folded')
    _build(num_prompts=2, cross_attn_impl='folded', cross_attn_rope=False)
    with pytest.raises(ValueError, match=r"^rope must be None or a dict with "
                       r"keys from \['base', 'normalize_coords'\]"):
        _build(rope=dict(theta=100))
    with pytest.raises(ValueError, match='^rope needs head channels '
                       r'divisible by 4, got 6 \(embed_dims / num_heads\)$'):
        CVPTViT(arch=dict(ARCH, num_heads=8), img_size=32, **DINOV3)
    with pytest.raises(ValueError, match="^rope normalize_coords must be one "
                       r"of \('separate', 'max', 'min'\), got 'mean'$"):
        _build(rope=dict(normalize_coords='mean'))


def test_checkpoint_of_the_other_position_kind_refused():
    """A DINOv2-style file (pos_embed) into a DINOv3 model and back: one
    line naming the cause, before any tensor is loaded."""
    rotary = _build(num_prompts=0)
    absolute = CVPTViT(arch=ARCH, img_size=IMG, num_prompts=0,
                       **dict(DINOV3, rope=None))
    with pytest.raises(CheckpointError, match=r'^pos_embed: the checkpoint '
                       r'has an absolute position embedding \(a DINOv2 or '
                       r"other ViT file\) but the model uses rotary positions "
                       r"\(rope=\{'base': 100.0\}\); a DINOv3 config needs"):
        rotary.load_state_dict(absolute.state_dict())
    with pytest.raises(CheckpointError, match='^pos_embed: the model has an '
                       'absolute position embedding but the checkpoint has '
                       r'none \(a DINOv3 file'):
        absolute.load_state_dict(rotary.state_dict())
