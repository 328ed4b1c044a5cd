"""CVPT / VPT on frozen foundation ViTs configured through mmpretrain:
DINOv2 (LayerScale, SwiGLU, register tokens) and CLIP (pre-norm, QuickGELU).

Tiny widths; every forward is checked against the plain-torch reference in
``tests/test_models/reference.py`` (and, where timm is installed, against
timm's VisionTransformer as a second, unrelated implementation).
"""
import copy
import zlib
from functools import partial
from unittest import TestCase

import pytest
import torch
import torch.nn.functional as F
from mmpretrain.models import VisionTransformer

from mmcvpt.models import PROMPT_POSITIONS, CVPTViT, VPTViT
from mmcvpt.peft import (CheckpointError, check_peft_signature,
                         peft_signature)
from tests.test_models.reference import quick_gelu, ref_vit

ARCH = dict(embed_dims=48, num_layers=3, num_heads=4, feedforward_channels=96)
# (backbone kwargs, reference kwargs). Images are 42 x 28 px, 14-px patches.
MODELS = {
    'dinov2_reg':
    (dict(layer_scale_init_value=1e-5, num_register_tokens=4),
     dict(eps=1e-6, act=F.gelu)),
    'dinov2_swiglu':
    (dict(layer_scale_init_value=1e-5, num_register_tokens=2,
          layer_cfgs=dict(ffn_type='swiglu_fused')),
     dict(eps=1e-6, act=F.gelu)),
    'clip': (dict(pre_norm=True, norm_cfg=dict(type='LN', eps=1e-5),
                  layer_cfgs=dict(act_cfg=dict(type='mmpretrain.QuickGELU'))),
             dict(eps=1e-5, act=quick_gelu)),
}
IMG = (42, 28)


def _build(name, cls=CVPTViT, **kwargs):
    torch.manual_seed(0)
    model = cls(arch=ARCH, img_size=IMG, patch_size=14,
                **copy.deepcopy(MODELS[name][0]), **kwargs)
    _randomise_(model).eval()  # BaseBackbone.train() returns None
    return model


def _randomise_(model):
    """Non-trivial values everywhere: LayerScale at its 1e-5 init would make
    every block an identity to 1e-5 and hide any error inside it."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            # seeded by name: the same values in models with other modules
            g = torch.Generator().manual_seed(zlib.crc32(name.encode()))
            noise = torch.randn(p.shape, generator=g, dtype=p.dtype)
            # gammas and norm weights around 1, the rest O(0.15)
            base = 1. if name.endswith(('gamma1.weight', 'gamma2.weight')) \
                or ('ln' in name or 'norm' in name) and p.dim() == 1 and \
                name.endswith('weight') else 0.
            p.copy_(base + 0.15 * noise)
    return model


def set_impl(model, impl):
    """Run every layer's cross-attention as ``impl`` (the ops hold it;
    the backbone's ``cross_attn_impl`` attribute is only what it was built
    with)."""
    for op in model.cross_attn_ops:
        op.impl = impl


def _ref(model, name, x, **kwargs):
    return ref_vit(x, model.state_dict(), ARCH['num_layers'],
                   ARCH['num_heads'], 14, **MODELS[name][1], **kwargs)


def _image(dtype=torch.float32):
    return torch.randn(2, 3, *IMG, generator=torch.Generator().manual_seed(2),
                       dtype=dtype)


@pytest.mark.parametrize('name', MODELS)
def test_plain_forward_equals_reference(name):
    model = _build(name, num_prompts=0, out_type='raw').double()
    x = _image(torch.float64)
    with torch.no_grad():
        out = model(x)[0]
        ref = _ref(model, name, x)
    assert out.shape == ref.shape == (2, 1 + 3 * 2, ARCH['embed_dims'])
    assert (out - ref).abs().max() < 1e-10
    # The layers are far from identities (LayerScale randomised, not 1e-5).
    no_layers = ref_vit(x, model.state_dict(), 0, ARCH['num_heads'], 14,
                        **MODELS[name][1])
    assert (out - no_layers).abs().max() > 0.1


@pytest.mark.parametrize('position', PROMPT_POSITIONS)
@pytest.mark.parametrize('name', MODELS)
def test_cvpt_folded_direct_and_reference(name, position):
    model = _build(name, num_prompts=5, prompt_position=position,
                   out_type='raw').double()
    x = _image(torch.float64)
    outs = {}
    with torch.no_grad():
        for impl in ('folded', 'direct'):
            set_impl(model, impl)
            outs[impl] = model(x)[0]
        ref = _ref(model, name, x, prompts=model.prompts, position=position)
        plain = _ref(model, name, x)
    assert (outs['folded'] - outs['direct']).abs().max() < 1e-10
    assert (outs['folded'] - ref).abs().max() < 1e-10
    assert (ref - plain).abs().max() > 1e-3  # the prompts do something


@pytest.mark.parametrize('name', MODELS)
def test_cvpt_float32_and_per_sample_dropout(name):
    """Float32 within 1e-4 of the float64 reference; in train mode with one
    dropout mask per sample, folded == direct under the same masks."""
    model = _build(name, num_prompts=5, out_type='raw', prompt_dropout=0.3)
    x = _image()
    with torch.no_grad():
        ref = _ref(copy.deepcopy(model).double(), name, x.double(),
                   prompts=model.prompts.double(), position='after_attn')
        assert (model(x)[0] - ref).abs().max() < 1e-4
        model.train()
        outs = []
        for impl in ('folded', 'direct'):
            set_impl(model, impl)
            torch.manual_seed(3)
            outs.append(model(x)[0])
    assert (outs[0] - outs[1]).abs().max() < 1e-5
    torch.manual_seed(4)
    assert (outs[0] - model(x)[0]).abs().max() > 1e-4  # other masks


def test_cross_attention_goes_through_layer_scale():
    """The decision the reference encodes, shown directly: doubling gamma1
    doubles the cross-attention's contribution (and only gamma1 does)."""
    model = _build('dinov2_reg', num_prompts=3)
    layer = model.layers[1]
    x = torch.randn(2, 11, ARCH['embed_dims'])
    prompts = model.prompts[1].detach()
    with torch.no_grad():
        ca = model.cross_attention(1, layer, x, prompts)
        layer.attn.gamma1.weight.mul_(2)
        torch.testing.assert_close(
            model.cross_attention(1, layer, x, prompts), 2 * ca)


def test_copy_equals_shared_with_layer_scale():
    shared = _build('dinov2_swiglu', num_prompts=4, out_type='raw')
    copied = _build('dinov2_swiglu', num_prompts=4, out_type='raw',
                    cross_attn_weights='copy')
    copied.load_state_dict(shared.state_dict())
    x = _image()
    with torch.no_grad():
        torch.testing.assert_close(copied(x)[0], shared(x)[0])


def test_vpt_with_registers_equals_reference():
    model = _build('dinov2_reg', cls=VPTViT, num_prompts=3,
                   out_type='raw').double()
    x = _image(torch.float64)
    with torch.no_grad():
        out = model(x)[0]
        ref = _ref(model, 'dinov2_reg', x, prompts=model.prompts, vpt=True)
    assert out.shape == (2, 1 + 6, ARCH['embed_dims'])
    assert (out - ref).abs().max() < 1e-10


@pytest.mark.parametrize('cls', [CVPTViT, VPTViT])
def test_only_prompts_change(cls):
    model = _build('dinov2_swiglu', cls=cls, num_prompts=4,
                   drop_path_rate=0.1)
    model.train()
    head = torch.nn.Linear(ARCH['embed_dims'], 3)
    before = copy.deepcopy(model.state_dict())
    opt = torch.optim.AdamW(
        list(model.parameters()) + list(head.parameters()), lr=0.1,
        weight_decay=0.05)
    for _ in range(2):
        loss = F.cross_entropy(head(model(_image())[0]), torch.tensor([0, 2]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = model.state_dict()
    assert 'register_tokens' in before and 'layers.0.attn.gamma1.weight' in \
        before
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {'prompts'}
    assert [n for n, p in model.named_parameters() if p.requires_grad] == \
        ['prompts']


@pytest.mark.parametrize('name', ['dinov2_reg', 'dinov2_swiglu'])
def test_outputs_never_contain_registers(name):
    R = MODELS[name][0]['num_register_tokens']
    H, W = IMG[0] // 14, IMG[1] // 14
    outs = {}
    for out_type in ('raw', 'featmap', 'cls_token', 'avg_featmap'):
        model = _build(name, num_prompts=2, out_type=out_type,
                       out_indices=(1, -1))
        with torch.no_grad():
            outs[out_type] = model(_image())
    raw, feat, cls, avg = outs.values()
    C = ARCH['embed_dims']
    for i in range(2):
        assert raw[i].shape == (2, 1 + H * W, C)
        assert feat[i].shape == (2, C, H, W)
        assert torch.equal(cls[i], raw[i][:, 0])
        assert torch.equal(feat[i].flatten(2).transpose(1, 2), raw[i][:, 1:])
    sd = model.state_dict()
    torch.testing.assert_close(
        avg[1],
        F.layer_norm(raw[1][:, 1:].mean(1), (C, ), sd['ln2.weight'],
                     sd['ln2.bias'], eps=1e-6))
    # The registers are in the sequence: they change every output.
    model = _build(name, num_prompts=2, out_type='raw')
    with torch.no_grad():
        first = model(_image())[0]
        model.register_tokens.add_(1.)
        assert (model(_image())[0] - first).abs().max() > 1e-3
    assert model.register_tokens.shape == (1, R, C)


@pytest.mark.parametrize('name', MODELS)
def test_state_dict_keys_are_mmpretrains_plus_prompts_and_registers(name):
    kwargs = copy.deepcopy(MODELS[name][0])
    R = kwargs.pop('num_register_tokens', 0)
    vit = VisionTransformer(arch=ARCH, img_size=IMG, patch_size=14, **kwargs)
    model = _build(name, num_prompts=3)
    extra = {'prompts'} | ({'register_tokens'} if R else set())
    assert set(model.state_dict()) == set(vit.state_dict()) | extra
    assert not set(vit.state_dict()) & extra
    # A converted checkpoint (mmpretrain keys + register_tokens) loads with
    # only the prompts missing.
    ckpt = _randomise_(vit).state_dict()
    if R:
        ckpt['register_tokens'] = torch.randn(1, R, ARCH['embed_dims'])
    missing, unexpected = model.load_state_dict(ckpt, strict=False)
    assert missing == ['prompts'] and unexpected == []
    if R:
        assert torch.equal(model.register_tokens, ckpt['register_tokens'])
        # layer-wise lr decay: an embedding, like cls_token
        assert model.get_layer_depth('backbone.register_tokens',
                                     'backbone.') == (0, ARCH['num_layers'] + 2)
        stages = _build(name, num_prompts=0, freeze_backbone=False,
                        frozen_stages=1)
        assert not stages.register_tokens.requires_grad
        assert not stages.cls_token.requires_grad


def test_pretrained_pos_embed_is_resized_registers_kept(tmp_path):
    """num_extra_tokens stays mmpretrain's: pos_embed (cls + patches) from a
    518-px checkpoint (37 x 37 patches) resizes to the model's grid."""
    kwargs = copy.deepcopy(MODELS['dinov2_reg'][0])
    kwargs.pop('num_register_tokens')
    vit = _randomise_(
        VisionTransformer(arch=ARCH, img_size=518, patch_size=14, **kwargs))
    ckpt = dict(vit.state_dict(), register_tokens=torch.randn(1, 4, 48))
    path = tmp_path / 'dinov2_reg4.pth'
    torch.save({'state_dict': ckpt}, path)
    model = CVPTViT(arch=ARCH, img_size=56, patch_size=14, num_prompts=2,
                    out_type='featmap', num_register_tokens=4, **kwargs,
                    init_cfg=dict(type='StrictPretrained', checkpoint=str(path)))
    model.init_weights()
    assert model.pos_embed.shape == (1, 1 + 4 * 4, 48)
    assert torch.equal(model.pos_embed[:, 0], vit.pos_embed[:, 0])
    assert torch.equal(model.register_tokens, ckpt['register_tokens'])
    # and at run time, to another input size
    with torch.no_grad():
        assert model(torch.randn(1, 3, 70, 42))[0].shape == (1, 48, 5, 3)


def test_registers_follow_the_class_token_inside_the_layers():
    """Order is invisible in the outputs (attention has no positional bias),
    so check what the first layer sees: (cls, registers, patches)."""
    model = _build('dinov2_reg', num_prompts=2)
    seen = []  # the layer's input is the input of its first norm
    model.layers[0].ln1.register_forward_pre_hook(
        lambda mod, args: seen.append(args[0]))
    with torch.no_grad():
        model(_image())
    x, R = seen[0], model.num_register_tokens
    assert x.shape == (2, 1 + R + 6, ARCH['embed_dims'])
    assert torch.equal(x[:, 1:1 + R], model.register_tokens.expand(2, -1, -1))
    torch.testing.assert_close(
        x[:, 0], (model.cls_token + model.pos_embed[:, :1])[:, 0].expand(
            2, -1))


def test_peft_state_dict_restores_registers_from_pretrained(tmp_path):
    """A PEFT state dict (prompts + metadata) of a registers model: the
    frozen register_tokens come back from the pretrained file."""
    from mmcvpt.peft import tuned_state_dict
    trained = _build('dinov2_reg', num_prompts=3, out_type='featmap')
    path = tmp_path / 'dinov2_reg4.pth'
    pretrained = {
        k: v
        for k, v in trained.state_dict().items() if k != 'prompts'
    }
    torch.save({'state_dict': pretrained}, path)
    kwargs = dict(copy.deepcopy(MODELS['dinov2_reg'][0]), arch=ARCH,
                  img_size=IMG, patch_size=14, num_prompts=3,
                  out_type='featmap',
                  init_cfg=dict(type='StrictPretrained', checkpoint=str(path)))
    trained.init_cfg = kwargs['init_cfg']
    peft = tuned_state_dict(trained)
    assert set(peft) == {'prompts', 'peft_meta'}
    assert peft['peft_meta']['num_register_tokens'] == 4
    fresh = CVPTViT(**kwargs)  # random registers until loaded
    fresh.load_state_dict(peft)
    fresh.eval()
    assert torch.equal(fresh.register_tokens, trained.register_tokens)
    with torch.no_grad():
        assert torch.equal(fresh(_image())[0], trained(_image())[0])
    # A model without registers refuses that file's metadata.
    kwargs.update(num_register_tokens=0)
    with pytest.raises(CheckpointError,
                       match='saved for num_register_tokens=4 but this model '
                       'has num_register_tokens=0'):
        CVPTViT(**kwargs).load_state_dict(peft)


def test_register_checkpoint_mismatches_are_refused():
    with_regs = _build('dinov2_reg', num_prompts=2)  # 4 registers
    sd = with_regs.state_dict()
    kwargs = copy.deepcopy(MODELS['dinov2_reg'][0])
    for R, msg in [(0, 'has register tokens of shape \\(1, 4, 48\\) but the '
                    'model has num_register_tokens=0; set '
                    'num_register_tokens=4'),
                   (2, 'checkpoint shape \\(1, 4, 48\\) but the model has '
                    '\\(1, 2, 48\\); the checkpoint has 4 register tokens; '
                    'set num_register_tokens=4')]:
        kwargs['num_register_tokens'] = R
        model = CVPTViT(arch=ARCH, img_size=IMG, patch_size=14,
                        num_prompts=2, **kwargs)
        with pytest.raises(CheckpointError, match=msg):
            model.load_state_dict(sd, strict=False)
    plain = {k: v for k, v in sd.items() if k != 'register_tokens'}
    with pytest.raises(CheckpointError,
                       match='num_register_tokens=4 but the checkpoint has '
                       'no register tokens'):
        with_regs.load_state_dict(plain, strict=False)


def test_peft_signature_names_registers_only_when_used():
    without = peft_signature(_build('clip'))
    assert 'num_register_tokens' not in without
    regs = _build('dinov2_reg')
    assert peft_signature(regs) == dict(without, num_register_tokens=4)
    check_peft_signature(regs, peft_signature(regs))
    # A file saved without the entry was saved without registers.
    with pytest.raises(CheckpointError,
                       match='saved for num_register_tokens=0 but this model '
                       'has num_register_tokens=4'):
        check_peft_signature(regs, without)


class TestBadRegisterArguments(TestCase):

    def test_errors(self):
        for value in (-1, 2.0, True, '4', None):
            with self.assertRaisesRegex(
                    ValueError, '^num_register_tokens must be an int >= 0, '
                    f'got {value!r}$'.replace('(', '\\(')):
                CVPTViT(arch=ARCH, img_size=28, patch_size=14,
                        num_register_tokens=value)


def _timm_vit(model, name):
    """timm's VisionTransformer with ``model``'s weights (DINOv2's layout
    in timm: pos_embed on patches only, the class token's own position
    embedding folded into cls_token)."""
    timm = pytest.importorskip('timm')
    from timm.layers import QuickGELU
    kwargs, ref_kwargs = MODELS[name]
    R = kwargs.get('num_register_tokens', 0)
    C = ARCH['embed_dims']
    vit = timm.models.VisionTransformer(
        img_size=IMG, patch_size=14, embed_dim=C, depth=ARCH['num_layers'],
        num_heads=ARCH['num_heads'], mlp_ratio=ARCH['feedforward_channels'] /
        C, num_classes=0, global_pool='', reg_tokens=R,
        no_embed_class=True, pre_norm=kwargs.get('pre_norm', False),
        init_values=kwargs.get('layer_scale_init_value'),
        act_layer=QuickGELU if name == 'clip' else None,
        norm_layer=partial(torch.nn.LayerNorm, eps=ref_kwargs['eps']))
    sd = model.state_dict()
    new = {
        'cls_token': sd['cls_token'] + sd['pos_embed'][:, :1],
        'pos_embed': sd['pos_embed'][:, 1:],
        'norm.weight': sd['ln1.weight'],
        'norm.bias': sd['ln1.bias'],
    }
    renames = [('patch_embed.projection.', 'patch_embed.proj.'),
               ('pre_norm.', 'norm_pre.'), ('register_tokens', 'reg_token'),
               ('.ln1.', '.norm1.'), ('.ln2.', '.norm2.'),
               ('.attn.gamma1.weight', '.ls1.gamma'),
               ('.ffn.gamma2.weight', '.ls2.gamma'),
               ('.ffn.layers.0.0.', '.mlp.fc1.'),
               ('.ffn.layers.1.', '.mlp.fc2.'),
               ('layers.', 'blocks.')]
    for key, value in sd.items():
        if key in ('cls_token', 'pos_embed', 'prompts') or \
                key.startswith('ln1.'):
            continue
        for a, b in renames:
            key = key.replace(a, b)
        new[key] = value
    vit.load_state_dict(new)
    return vit.eval()


@pytest.mark.parametrize('name', ['dinov2_reg', 'clip'])
def test_plain_forward_equals_timm(name):
    model = _build(name, num_prompts=0, out_type='raw')
    vit = _timm_vit(model, name)
    R = MODELS[name][0].get('num_register_tokens', 0)
    x = _image()
    with torch.no_grad():
        out = model(x)[0]
        ref = vit.forward_features(x)  # (B, 1 + R + HW, C)
    assert ref.shape[1] == 1 + R + 6
    ref = torch.cat((ref[:, :1], ref[:, 1 + R:]), dim=1)
    assert (out - ref).abs().max() < 1e-4
