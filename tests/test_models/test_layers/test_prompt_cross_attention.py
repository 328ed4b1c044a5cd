import pytest
import torch
import torch.nn as nn

from mmcvpt.models import CVPTViT
from mmcvpt.models.layers import (DirectPrompts, FoldedPrompts,
                                  PromptCrossAttention, folded_is_cheaper,
                                  prompt_attention_probs,
                                  prompt_cross_attention)
from tests.test_models.reference import ref_attention


def _weights(C, bias=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = dict(
        qkv_weight=torch.randn(3 * C, C, generator=g) / C**0.5,
        qkv_bias=torch.randn(3 * C, generator=g) if bias else None,
        proj_weight=torch.randn(C, C, generator=g) / C**0.5,
        proj_bias=torch.randn(C, generator=g))
    return w


@pytest.mark.parametrize('impl', ['folded', 'direct'])
@pytest.mark.parametrize('bias', [True, False])
@pytest.mark.parametrize('B,N,C,h,m', [(2, 7, 24, 3, 5), (1, 50, 64, 8, 1),
                                       (3, 13, 32, 1, 9)])
def test_matches_reference(impl, bias, B, N, C, h, m):
    w = _weights(C, bias)
    x, p = torch.randn(B, N, C), torch.randn(m, C)
    out = prompt_cross_attention(x, p, num_heads=h, impl=impl, **w)
    ref = ref_attention(x, p.expand(B, -1, -1), w['qkv_weight'], w['qkv_bias'],
                        w['proj_weight'], w['proj_bias'], h)
    assert out.shape == (B, N, C)
    assert (out - ref).abs().max() < 1e-5


@pytest.mark.parametrize('m', [1, 10, 64, 100])
def test_folded_and_direct_agree_forward_and_backward(m):
    B, N, C, h = 2, 20, 96, 6
    w = _weights(C)
    x = torch.randn(B, N, C, requires_grad=True)
    g = torch.randn(B, N, C) / (B * N * C)**0.5
    results = {}
    for impl in ('folded', 'direct'):
        p = torch.randn(m, C, generator=torch.Generator().manual_seed(m))
        p.requires_grad_(True)
        out = prompt_cross_attention(x, p, num_heads=h, impl=impl, **w)
        gx, gp = torch.autograd.grad((out * g).sum(), (x, p))
        results[impl] = (out, gx, gp)
    for a, b in zip(results['folded'], results['direct']):
        assert (a - b).abs().max() < 1e-5


def test_bad_impl():
    w = _weights(8)
    with pytest.raises(ValueError, match=r"impl must be one of .*'fast'"):
        prompt_cross_attention(
            torch.randn(1, 2, 8),
            torch.randn(3, 8),
            num_heads=2,
            impl='fast',
            **w)


@pytest.mark.parametrize('impl', ['folded', 'direct'])
@pytest.mark.parametrize('bias', [True, False])
def test_per_sample_prompts_match_reference(impl, bias):
    """Prompts (B, m, C), one dropout mask per sample: forward and the
    gradients of x and of the shared prompts, against the reference run on
    each sample's masked prompts (float64)."""
    B, N, C, h, m = 3, 11, 24, 3, 7
    g = torch.Generator().manual_seed(3)
    w = {
        k: v if v is None else v.double()
        for k, v in _weights(C, bias).items()
    }
    x = torch.randn(B, N, C, generator=g, dtype=torch.float64)
    p = torch.randn(m, C, generator=g, dtype=torch.float64)
    mask = (torch.rand(B, m, C, generator=g) > 0.3).double() / 0.7
    grad = torch.randn(B, N, C, generator=g, dtype=torch.float64)
    results = []
    for run in ('impl', 'ref'):
        xl, pl = x.clone().requires_grad_(), p.clone().requires_grad_()
        if run == 'impl':
            out = prompt_cross_attention(
                xl, pl * mask, num_heads=h, impl=impl, **w)
        else:
            out = ref_attention(xl, pl * mask, w['qkv_weight'], w['qkv_bias'],
                                w['proj_weight'], w['proj_bias'], h)
        results.append((out, ) +
                       torch.autograd.grad((out * grad).sum(), (xl, pl)))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('impl', ['folded', 'direct'])
@pytest.mark.parametrize('per_sample', [True, False])
def test_gradcheck(impl, per_sample):
    B, N, C, h, m = 2, 5, 8, 2, 3
    g = torch.Generator().manual_seed(4)
    w = {k: v.double() for k, v in _weights(C).items()}
    x = torch.randn(
        B, N, C, generator=g, dtype=torch.float64, requires_grad=True)
    shape = (B, m, C) if per_sample else (m, C)
    p = torch.randn(
        *shape, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x, p: prompt_cross_attention(x, p, num_heads=h, impl=impl, **w),
        (x, p))


def _linears(C, bias=True, seed=0):
    """float64 nn.Linear q/k/v and output projections."""
    w = _weights(C, bias, seed)
    qkv = nn.Linear(C, 3 * C, bias=bias).double()
    proj = nn.Linear(C, C).double()
    with torch.no_grad():
        qkv.weight.copy_(w['qkv_weight'])
        if bias:
            qkv.bias.copy_(w['qkv_bias'])
        proj.weight.copy_(w['proj_weight'])
        proj.bias.copy_(w['proj_bias'])
    return qkv, proj


def _inputs(B, N, C, m, per_sample, seed=5):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, N, C, generator=g, dtype=torch.float64)
    shape = (B, m, C) if per_sample else (m, C)
    return x, torch.randn(*shape, generator=g, dtype=torch.float64)


def _ref(x, p, qkv, proj, h, qkv_bias='same', proj_bias='same'):
    B = x.shape[0]
    p = p if p.dim() == 3 else p.expand(B, -1, -1)
    qkv_bias = qkv.bias if qkv_bias == 'same' else qkv_bias
    proj_bias = proj.bias if proj_bias == 'same' else proj_bias
    return ref_attention(x, p, qkv.weight, qkv_bias, proj.weight, proj_bias, h)


@pytest.mark.parametrize('impl', ['folded', 'direct'])
@pytest.mark.parametrize('per_sample', [False, True])
@pytest.mark.parametrize('bias', [True, False])
def test_module_matches_reference(impl, per_sample, bias):
    B, N, C, h, m = 3, 11, 24, 3, 7
    qkv, proj = _linears(C, bias)
    x, p = _inputs(B, N, C, m, per_sample)
    op = PromptCrossAttention(h, impl)
    with torch.no_grad():
        out = op(x, p, qkv, proj)
        ref = _ref(x, p, qkv, proj, h)
    assert out.shape == (B, N, C)
    assert (out - ref).abs().max() < 1e-10


@pytest.mark.parametrize('impl', ['folded', 'direct'])
@pytest.mark.parametrize('per_sample', [False, True])
@pytest.mark.parametrize('bias', [True, False])
def test_without_value_bias_drops_bv_and_bo(impl, per_sample, bias):
    B, N, C, h, m = 2, 9, 24, 3, 5
    qkv, proj = _linears(C, bias)
    x, p = _inputs(B, N, C, m, per_sample)
    op = PromptCrossAttention(h, impl, value_bias=False)
    zero_bv = None
    if bias:  # bq, bk kept
        zero_bv = qkv.bias.detach().clone()
        zero_bv[2 * C:] = 0
    with torch.no_grad():
        out = op(x, p, qkv, proj)
        ref = _ref(x, p, qkv, proj, h, zero_bv, torch.zeros(C).double())
        with_bias = PromptCrossAttention(h, impl)(x, p, qkv, proj)
    assert (out - ref).abs().max() < 1e-10
    assert (out - with_bias).abs().max() > 1e-3  # bo alone shifts it
    # The layers' own biases are left alone.
    assert torch.equal(proj.bias, _linears(C, bias)[1].bias)


@pytest.mark.parametrize('impl,m,form', [('auto', 3, FoldedPrompts),
                                         ('auto', 40, DirectPrompts),
                                         ('folded', 40, FoldedPrompts),
                                         ('direct', 3, DirectPrompts)])
def test_prepare_returns_named_forms(impl, m, form):
    C, h = 32, 4
    assert folded_is_cheaper(C, h, 3) and not folded_is_cheaper(C, h, 40)
    qkv, proj = _linears(C)
    op = PromptCrossAttention(h, impl)
    prepared = op.prepare(
        torch.randn(m, C).double(), qkv.weight, qkv.bias, proj.weight)
    assert type(prepared) is form


def _plain_probs(x, p, qkv, h):
    """softmax(q k^T / sqrt(d)) per head, written out."""
    B, N, C = x.shape
    d = C // h
    w, b = qkv.weight, qkv.bias
    q = (x @ w[:C].T + b[:C]).reshape(B, N, h, d).permute(0, 2, 1, 3)
    p = p if p.dim() == 3 else p.expand(B, -1, -1)
    k = (p @ w[C:2 * C].T + b[C:2 * C]).reshape(B, -1, h, d)
    k = k.permute(0, 2, 1, 3)
    return torch.softmax(q @ k.transpose(2, 3) / d**0.5, dim=-1)


@pytest.mark.parametrize('value_bias', [True, False])
@pytest.mark.parametrize('per_sample', [False, True])
def test_attention_probs(per_sample, value_bias):
    B, N, C, h, m = 2, 9, 24, 3, 5
    qkv, _ = _linears(C)
    x, p = _inputs(B, N, C, m, per_sample)
    op = PromptCrossAttention(h, value_bias=value_bias)
    with torch.no_grad():
        probs = op.attention_probs(x, p, qkv)
        want = _plain_probs(x, p, qkv, h)
    assert probs.shape == (B, h, N, m)
    torch.testing.assert_close(
        probs.sum(-1), torch.ones(B, h, N, dtype=torch.float64))
    assert (probs - want).abs().max() < 1e-12
    if not per_sample:
        assert torch.equal(
            prompt_attention_probs(x, p, qkv.weight, qkv.bias, h), probs)


def test_bad_impl_in_module():
    with pytest.raises(ValueError, match=r"impl must be one of .*'fast'"):
        PromptCrossAttention(2, 'fast')


def test_module_has_no_state():
    op = PromptCrossAttention(4)
    assert list(op.parameters()) == [] and list(op.buffers()) == []
    assert op.state_dict() == {}


TINY = dict(embed_dims=16, num_layers=2, num_heads=2, feedforward_channels=32)
TOP_KEYS = {
    'cls_token', 'pos_embed', 'patch_embed.projection.weight',
    'patch_embed.projection.bias', 'ln1.weight', 'ln1.bias', 'prompts'
}
LAYER_KEYS = {
    'attn.qkv.weight', 'attn.qkv.bias', 'attn.proj.weight', 'attn.proj.bias',
    'ln1.weight', 'ln1.bias', 'ln2.weight', 'ln2.bias',
    'ffn.layers.0.0.weight', 'ffn.layers.0.0.bias', 'ffn.layers.1.weight',
    'ffn.layers.1.bias'
}
COPY_KEYS = {'qkv.weight', 'qkv.bias', 'proj.weight', 'proj.bias'}


def _tiny_cvpt(**kwargs):
    torch.manual_seed(0)
    model = CVPTViT(
        arch=TINY, img_size=16, patch_size=8, num_prompts=3, **kwargs)
    model.eval()
    return model


@pytest.mark.parametrize('weights', ['shared', 'copy'])
@pytest.mark.parametrize('gate', [False, True])
def test_cvpt_state_dict_keys_unchanged(weights, gate):
    model = _tiny_cvpt(cross_attn_weights=weights, cross_attn_gate=gate)
    want = TOP_KEYS | {f'layers.{i}.{k}' for i in range(2) for k in LAYER_KEYS}
    if weights == 'copy':
        want |= {f'cross_attn.{i}.{k}' for i in range(2) for k in COPY_KEYS}
    if gate:
        want.add('cross_attn_gates')
    assert set(model.state_dict()) == want
    assert len(model.cross_attn_ops) == 2
    assert all(
        isinstance(op, PromptCrossAttention) for op in model.cross_attn_ops)


@pytest.mark.parametrize('weights', ['shared', 'copy'])
def test_hook_sees_each_layer_once_with_its_prompts(weights):
    model = _tiny_cvpt(cross_attn_weights=weights)
    calls = []

    def hook(op, inputs, out):
        calls.append((op, ) + inputs + (out, ))

    handles = [op.register_forward_hook(hook) for op in model.cross_attn_ops]
    with torch.no_grad():
        model(torch.randn(2, 3, 16, 16))
        assert len(calls) == 2
        model(torch.randn(2, 3, 16, 16))
    for handle in handles:
        handle.remove()
    assert len(calls) == 4  # once per layer per forward
    for n, (op, x, prompts, qkv, proj, rope, out) in enumerate(calls):
        i = n % 2
        assert op is model.cross_attn_ops[i]
        assert rope is None  # no rotary positions in this ViT
        assert torch.equal(prompts, model.prompts[i])
        src = model.layers[i].attn if weights == 'shared' else \
            model.cross_attn[i]
        assert qkv is src.qkv and proj is src.proj
        assert x.shape == out.shape == (2, 5, 16)
        probs = op.attention_probs(x, prompts, qkv)
        assert probs.shape == (2, 2, 5, 3)


def test_hook_sees_per_sample_prompts_in_training():
    model = _tiny_cvpt(prompt_dropout=0.5)
    model.train()
    seen = []
    handle = model.cross_attn_ops[1].register_forward_hook(
        lambda op, inputs, out: seen.append(inputs[1]))
    model(torch.randn(3, 3, 16, 16))
    handle.remove()
    assert len(seen) == 1 and seen[0].shape == (3, 3, 16)
    # Dropout of layer 1's prompts: each kept entry is prompts[1] / 0.5.
    kept = seen[0] != 0
    torch.testing.assert_close(seen[0][kept],
                               (model.prompts[1] / 0.5).expand(3, -1,
                                                               -1)[kept])
