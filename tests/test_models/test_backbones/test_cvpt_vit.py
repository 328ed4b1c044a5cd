import copy
from unittest import TestCase

import pytest
import torch
from mmengine.registry import DefaultScope
from mmpretrain.models import VisionTransformer
from mmpretrain.registry import MODELS as PRETRAIN_MODELS
from mmseg.registry import MODELS as SEG_MODELS

from mmcvpt.models import PROMPT_POSITIONS, CVPTViT
from tests.test_models.reference import ref_attention, ref_vit

TINY = dict(embed_dims=32, num_layers=3, num_heads=4, feedforward_channels=64)
# ViT-B width and heads, 2 layers.
B_WIDTH = dict(
    embed_dims=768, num_layers=2, num_heads=12, feedforward_channels=3072)


def _build(arch=TINY, img_size=32, patch_size=8, **kwargs):
    torch.manual_seed(0)
    model = CVPTViT(
        arch=arch, img_size=img_size, patch_size=patch_size, **kwargs)
    model.init_weights()
    model.eval()  # mmpretrain's BaseBackbone.train() returns None
    return model


def _randomise_(model):
    """Non-trivial values everywhere (init leaves biases/cls at zero), with
    a scale that keeps attention logits O(1) at any width."""
    g = torch.Generator().manual_seed(1)
    std = 0.2 * (32 / model.embed_dims)**0.5
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std)
    return model


@pytest.mark.parametrize('mode', ['eval', 'train'])
@pytest.mark.parametrize('position', PROMPT_POSITIONS)
@pytest.mark.parametrize('arch,img,patch,m', [(TINY, 32, 8, 5),
                                              (B_WIDTH, 64, 16, 10)])
def test_parity_with_reference(position, arch, img, patch, m, mode):
    # Train mode with drop-path 0 and prompt dropout 0: the train-time code
    # path (DropPath modules, per-sample branch checks) is the same function.
    model = _randomise_(
        _build(arch, img, patch, num_prompts=m, prompt_position=position,
               out_type='raw', prompt_dropout=0.))
    model.train(mode == 'train')
    x = torch.randn(2, 3, img, img)
    with torch.no_grad():
        out = model(x)[0]
        ref = ref_vit(x, model.state_dict(), arch['num_layers'],
                      arch['num_heads'], patch, model.prompts, position)
    assert out.shape == ref.shape
    assert (out - ref).abs().max() < 1e-5


@pytest.mark.parametrize('m', [3, 100])  # folded and direct under 'auto'
def test_random_cross_attn_weights_match_reference(m):
    model = _randomise_(
        _build(num_prompts=m, cross_attn_weights='random', out_type='raw'))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = model(x)[0]
        ref = ref_vit(x, model.state_dict(), 3, 4, 8, model.prompts,
                      'after_attn', separate_ca=True)
    assert (out - ref).abs().max() < 1e-5


def test_num_prompts_zero_is_mmpretrain_vit():
    kwargs = dict(arch=TINY, img_size=32, patch_size=8, out_indices=(0, 2),
                  out_type='featmap')
    vit = _randomise_(VisionTransformer(**kwargs))
    cvpt = CVPTViT(num_prompts=0, **copy.deepcopy(kwargs))
    vit.eval()
    cvpt.eval()
    cvpt.load_state_dict(vit.state_dict())
    x = torch.randn(2, 3, 40, 32)
    for a, b in zip(vit(x), cvpt(x)):
        assert torch.equal(a, b)


def test_pretrained_keys_are_mmpretrains():
    vit = VisionTransformer(arch=TINY, img_size=32, patch_size=8)
    cvpt = CVPTViT(arch=TINY, img_size=32, patch_size=8, num_prompts=4)
    assert set(cvpt.state_dict()) - set(vit.state_dict()) == {'prompts'}
    # An mmpretrain checkpoint loads without renaming; only prompts missing.
    missing, unexpected = cvpt.load_state_dict(vit.state_dict(), strict=False)
    assert missing == ['prompts'] and unexpected == []


def test_shared_adds_exactly_prompt_parameters():
    L, m, C = TINY['num_layers'], 7, TINY['embed_dims']
    vit = VisionTransformer(arch=TINY, img_size=32, patch_size=8)
    cvpt = CVPTViT(arch=TINY, img_size=32, patch_size=8, num_prompts=m)
    count = lambda mod: sum(p.numel() for p in mod.parameters())  # noqa
    assert count(cvpt) - count(vit) == L * m * C
    assert cvpt.prompts.shape == (L, m, C)
    assert list(cvpt.buffers()) == list(vit.buffers()) == []
    # Shared by reference: the weights the cross-attention reads are the
    # self-attention's own tensors.
    assert cvpt.cross_attn is None


def test_copy_equals_shared_after_init():
    shared = _randomise_(_build(num_prompts=6, out_type='raw'))
    state = shared.state_dict()
    copied = _build(num_prompts=6, out_type='raw', cross_attn_weights='copy')
    # A plain ViT checkpoint + prompts: the pre-hook fills the copy.
    copied.load_state_dict(state)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(shared(x)[0], copied(x)[0])
    ca = copied.cross_attn[1].qkv.weight
    assert torch.equal(ca, state['layers.1.attn.qkv.weight'])
    assert ca.data_ptr() != copied.layers[1].attn.qkv.weight.data_ptr()


def test_copy_follows_init_cfg_pretrained(tmp_path):
    vit = _randomise_(VisionTransformer(arch=TINY, img_size=32, patch_size=8))
    ckpt = tmp_path / 'vit.pth'
    torch.save({'state_dict': vit.state_dict()}, ckpt)
    model = CVPTViT(
        arch=TINY, img_size=32, patch_size=8, cross_attn_weights='copy',
        init_cfg=dict(type='StrictPretrained', checkpoint=str(ckpt)))
    model.init_weights()
    for i, layer in enumerate(model.layers):
        assert torch.equal(model.cross_attn[i].proj.weight,
                           vit.layers[i].attn.proj.weight)
        assert torch.equal(layer.attn.proj.weight,
                           vit.layers[i].attn.proj.weight)


@pytest.mark.parametrize('kind,train_ca', [('shared', False),
                                           ('copy', False), ('random', True)])
def test_only_prompts_and_head_change(kind, train_ca):
    model = _build(num_prompts=4, cross_attn_weights=kind,
                   train_cross_attn=train_ca, drop_path_rate=0.1)
    model.train()
    head = torch.nn.Linear(TINY['embed_dims'], 5)
    before = copy.deepcopy(model.state_dict())
    head_before = head.weight.clone()
    params = list(model.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=0.1, weight_decay=0.05)
    for _ in range(2):
        loss = torch.nn.functional.cross_entropy(
            head(model(torch.randn(4, 3, 32, 32))[0]),
            torch.tensor([0, 1, 2, 3]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    expected = {'prompts'}
    if train_ca:
        expected |= {k for k in before if k.startswith('cross_attn.')}
    assert changed == expected
    assert not torch.equal(head.weight, head_before)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == expected


def test_with_cp_same_output_and_gradient():
    model = _randomise_(_build(num_prompts=4))
    x = torch.randn(2, 3, 32, 32)
    grads, outs = [], []
    for with_cp in (False, True):
        model.with_cp = with_cp
        model.prompts.grad = None
        out = model(x)[0]
        out.sum().backward()
        outs.append(out.detach())
        grads.append(model.prompts.grad.clone())
    assert torch.equal(outs[0], outs[1])
    assert grads[0].abs().max() > 0
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


def test_unfrozen_backbone_trains_everything():
    """One SGD step moves every tensor, not only the flags."""
    model = _build(num_prompts=2, freeze_backbone=False)
    assert all(p.requires_grad for p in model.parameters())
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    out = model(torch.randn(2, 3, 32, 32,
                            generator=torch.Generator().manual_seed(1)))
    sum(o.pow(2).sum() for o in out).backward()
    opt.step()
    unmoved = [n for n, p in model.named_parameters()
               if torch.equal(p.detach(), before[n])]
    assert unmoved == []


@pytest.mark.parametrize('registry', [PRETRAIN_MODELS, SEG_MODELS])
@pytest.mark.parametrize('hw', [(224, 224), (512, 512), (384, 512)])
def test_shapes_through_registries(registry, hw):
    cfg = dict(type='CVPTViT', arch=dict(TINY, num_layers=4), img_size=224,
               patch_size=16, out_indices=(1, 3), num_prompts=3)
    x = torch.randn(1, 3, *hw)
    outs = {}
    for out_type in ('featmap', 'cls_token', 'avg_featmap'):
        with DefaultScope.overwrite_default_scope(registry.scope):
            model = registry.build(dict(cfg, out_type=out_type))
        model.eval()
        with torch.no_grad():
            outs[out_type] = model(x)
    feats, cls, avg = outs.values()
    assert [f.shape for f in feats] == [(1, 32, hw[0] // 16, hw[1] // 16)] * 2
    assert [c.shape for c in cls] == [(1, 32)] * 2
    assert [a.shape for a in avg] == [(1, 32)] * 2


def test_arch_preset_b():
    model = CVPTViT(arch='b', img_size=32, patch_size=16, num_prompts=10)
    assert model.prompts.shape == (12, 10, 768)


class TestBadArguments(TestCase):

    def test_errors(self):
        cases = [
            (dict(num_prompts=-1), r'num_prompts must be an int >= 0, got -1'),
            (dict(prompt_position='middle'),
             r"prompt_position must be one of .*'after_attn'.*got 'middle'"),
            (dict(cross_attn_weights='tied'),
             r"cross_attn_weights must be one of .*'shared'.*got 'tied'"),
            (dict(out_indices=(0, 3)),
             r'out_indices must be ints in \[-3, 2\] for 3 layers, got'),
            (dict(train_cross_attn=True),
             r"train_cross_attn=True needs cross_attn_weights 'copy' or"),
            (dict(arch='gigantic'), r"arch must be one of .*got 'gigantic'"),
            (dict(prompt_dropout=1.5), r'prompt_dropout must be in'),
        ]
        for kwargs, msg in cases:
            args = dict(arch=TINY, img_size=32, patch_size=8)
            args.update(kwargs)
            with self.assertRaisesRegex(ValueError, msg):
                CVPTViT(**args)


def test_missing_pretrained_file_is_one_clear_line(tmp_path):
    path = tmp_path / 'pretrain' / 'vit-b16.pth'
    model = CVPTViT(arch=TINY, img_size=32, patch_size=8,
                    init_cfg=dict(type='StrictPretrained', checkpoint=str(path)))
    with pytest.raises(FileNotFoundError) as err:
        model.init_weights()
    msg = str(err.value)
    assert f"pretrained backbone '{path}' not found" in msg
    assert 'tools/model_converters/vit2mmcvpt.py' in msg and '\n' not in msg


@pytest.mark.parametrize('m', [4, 100])  # folded, direct
def test_eval_forward_follows_weight_swaps_dtype_and_autocast(m):
    """What mmengine's EMAHook, ``.double()``, ``.to()`` and autocast do to
    a model between two eval forwards under no_grad."""
    model = _randomise_(_build(num_prompts=m))
    x = torch.randn(2, 3, 32, 32)

    def fresh(mod, inp):
        clone = copy.deepcopy(mod)  # no state shared with earlier forwards
        with torch.enable_grad():
            return clone(inp)[0].detach()

    with torch.no_grad():
        first = model(x)[0]
        # EMAHook swaps averaged weights in with `.data.copy_`, which does
        # not bump the parameter's version counter.
        model.prompts.data.copy_(model.prompts.data * 0.5 + 0.1)
        second = model(x)[0]
        assert not torch.allclose(first, second, atol=1e-3)
        torch.testing.assert_close(second, fresh(model, x))
        model.layers[1].attn.qkv.weight.data.mul_(2)
        torch.testing.assert_close(model(x)[0], fresh(model, x))

        with torch.autocast('cpu', dtype=torch.bfloat16):
            low = model(x)[0]
        exact = fresh(model, x)
        torch.testing.assert_close(low.float(), exact, atol=0.1, rtol=0.1)
        torch.testing.assert_close(model(x)[0], exact)

        model.double()
        out64 = model(x.double())[0]
        assert out64.dtype == torch.float64
        torch.testing.assert_close(out64.float(), fresh(model, x.double())
                                   .float(), atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(out64.float(), model.float()(x)[0],
                                   atol=1e-4, rtol=1e-4)


def test_pretrained_pos_embed_is_resized(tmp_path):
    # A 224-pixel checkpoint (14x14 patches) loaded into a 512-pixel model.
    vit = _randomise_(VisionTransformer(arch=TINY, img_size=224,
                                        patch_size=16))
    ckpt = tmp_path / 'vit224.pth'
    torch.save({'state_dict': vit.state_dict()}, ckpt)
    model = CVPTViT(arch=TINY, img_size=512, patch_size=16, num_prompts=3,
                    init_cfg=dict(type='StrictPretrained', checkpoint=str(ckpt)))
    model.init_weights()
    assert model.pos_embed.shape == (1, 1 + 32 * 32, 32)
    assert torch.equal(model.pos_embed[:, 0], vit.pos_embed[:, 0])
    assert torch.equal(model.layers[2].ffn.layers[1].weight,
                       vit.layers[2].ffn.layers[1].weight)


class _AlwaysDrop(torch.nn.Module):
    """A DropPath that drops every sample (train mode, deterministic)."""

    def forward(self, x):
        return torch.zeros_like(x)


@pytest.mark.parametrize('position', PROMPT_POSITIONS)
def test_drop_path_placement(position):
    """With every DropPath dropping, what survives of a block is what the
    reference leaves outside DropPath: the cross-attention, except in the
    parallel position (DropPath on MSA + CA) and inside the FFN."""
    model = _randomise_(_build(num_prompts=3, prompt_position=position))
    model.train()
    layer = model.layers[0]
    replaced = 0
    for name, module in list(layer.named_modules()):
        if type(module).__name__ == 'DropPath':
            parent, _, attr = name.rpartition('.')
            setattr(layer.get_submodule(parent), attr, _AlwaysDrop())
            replaced += 1
    assert replaced == 2  # after the self-attention and after the FFN
    x = torch.randn(2, 5, TINY['embed_dims'])
    prompts = model.prompts[0].detach()
    with torch.no_grad():
        out = model.forward_layer(0, layer, x, prompts)
        sd = model.state_dict()
        ca = ref_attention(x, prompts.expand(2, -1, -1),
                           sd['layers.0.attn.qkv.weight'],
                           sd['layers.0.attn.qkv.bias'],
                           sd['layers.0.attn.proj.weight'],
                           sd['layers.0.attn.proj.bias'], TINY['num_heads'])
    expected = x if position in ('parallel', 'in_ffn') else x + ca
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


class _GivenMask(torch.nn.Dropout):
    """A dropout that applies a given 0/1 mask, scaled by 1 / (1 - p) as
    torch's dropout and mmcv's DropPath scale what they keep: the prompt
    dropout (mask of the prompts' shape) or a DropPath (one entry per
    sample)."""

    def __init__(self, mask, p):
        super().__init__(p)
        self.mask = mask

    def forward(self, x):
        if not self.training:
            return x
        scale = self.mask / (1 - self.p)
        if self.mask.dim() == 1:  # DropPath: the whole sample or nothing
            assert x.shape[0] == self.mask.shape[0]
            return x * scale.view(-1, *([1] * (x.dim() - 1)))
        assert x.shape == self.mask.shape
        return x * scale


@pytest.mark.parametrize('impl', ['folded', 'direct'])
@pytest.mark.parametrize('position', PROMPT_POSITIONS)
def test_train_mode_with_dropout_and_drop_path_matches_reference(
        position, impl):
    """Train mode that differs from eval: per-sample prompt dropout and
    DropPath in every layer, their random masks drawn here and given to the
    model and to the reference alike; forward and prompt gradients agree."""
    B, m, p = 4, 5, 0.1
    model = _randomise_(
        _build(num_prompts=m, prompt_position=position, out_type='raw',
               prompt_dropout=p, drop_path_rate=0.1, cross_attn_impl=impl))
    model.train()
    L, C = TINY['num_layers'], TINY['embed_dims']
    g = torch.Generator().manual_seed(5)
    prompt_mask = (torch.rand(L, B, m, C, generator=g) > p).float()
    model.prompt_dropout = _GivenMask(prompt_mask, p)
    path_scales = []
    for i, layer in enumerate(model.layers):
        scales = [None, None]
        for name, module in list(layer.named_modules()):
            if type(module).__name__ != 'DropPath':
                continue
            branch = 0 if name.startswith('attn.') else 1
            mask = torch.ones(B)
            mask[(i + branch) % B] = 0  # one sample dropped per branch
            parent, _, attr = name.rpartition('.')
            setattr(layer.get_submodule(parent), attr, _GivenMask(mask, 0.5))
            scales[branch] = mask / 0.5
        assert all(s is not None for s in scales)  # attention and FFN
        path_scales.append(scales)
    x = torch.randn(B, 3, 32, 32)
    out = model(x)[0]
    weights = torch.randn(out.shape)
    (out * weights).sum().backward()
    leaf = model.prompts.detach().clone().requires_grad_(True)
    sd = {k: v.detach() for k, v in model.state_dict().items()}
    ref = ref_vit(x, sd, L, TINY['num_heads'], 8,
                  leaf.unsqueeze(1) * prompt_mask / (1 - p), position,
                  drop_path=path_scales)
    (ref * weights).sum().backward()
    assert (out - ref).abs().max() < 1e-5
    torch.testing.assert_close(model.prompts.grad, leaf.grad, atol=1e-5,
                               rtol=1e-4)
    model.eval()  # no masks: every sample's output changes
    with torch.no_grad():
        plain = model(x)[0]
    assert (out.detach() - plain).flatten(1).abs().amax(1).min() > 1e-3
