import pytest
import torch

from mmcvpt.models.layers import (fold_prompts, folded_is_cheaper,
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
    ref = ref_attention(x, p.expand(B, -1, -1), w['qkv_weight'],
                        w['qkv_bias'], w['proj_weight'], w['proj_bias'], h)
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


def test_fold_prompts_shapes():
    C, h, m = 32, 4, 6
    w = _weights(C)
    mq, bias, vo = fold_prompts(
        torch.randn(m, C), w['qkv_weight'], w['qkv_bias'], w['proj_weight'],
        h)
    assert mq.shape == (h * m, C) and bias.shape == (h * m, )
    assert vo.shape == (h * m, C)


def test_auto_picks_the_cheaper_form():
    # ViT-B: h=12, C=768 -> folded while 12m < 768 + m, i.e. m <= 69.
    assert folded_is_cheaper(768, 12, 10)
    assert folded_is_cheaper(768, 12, 69)
    assert not folded_is_cheaper(768, 12, 70)
    assert not folded_is_cheaper(768, 12, 200)


def test_bad_impl():
    w = _weights(8)
    with pytest.raises(ValueError, match=r"impl must be one of .*'fast'"):
        prompt_cross_attention(
            torch.randn(1, 2, 8), torch.randn(3, 8), num_heads=2,
            impl='fast', **w)


@pytest.mark.parametrize('impl', ['folded', 'direct'])
@pytest.mark.parametrize('bias', [True, False])
def test_per_sample_prompts_match_reference(impl, bias):
    """Prompts (B, m, C), one dropout mask per sample: forward and the
    gradients of x and of the shared prompts, against the reference run on
    each sample's masked prompts (float64)."""
    B, N, C, h, m = 3, 11, 24, 3, 7
    g = torch.Generator().manual_seed(3)
    w = {k: v if v is None else v.double()
         for k, v in _weights(C, bias).items()}
    x = torch.randn(B, N, C, generator=g, dtype=torch.float64)
    p = torch.randn(m, C, generator=g, dtype=torch.float64)
    mask = (torch.rand(B, m, C, generator=g) > 0.3).double() / 0.7
    grad = torch.randn(B, N, C, generator=g, dtype=torch.float64)
    results = []
    for run in ('impl', 'ref'):
        xl, pl = x.clone().requires_grad_(), p.clone().requires_grad_()
        if run == 'impl':
            out = prompt_cross_attention(xl, pl * mask, num_heads=h,
                                         impl=impl, **w)
        else:
            out = ref_attention(xl, pl * mask, w['qkv_weight'],
                                w['qkv_bias'], w['proj_weight'],
                                w['proj_bias'], h)
        results.append((out, ) + torch.autograd.grad((out * grad).sum(),
                                                     (xl, pl)))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('impl', ['folded', 'direct'])
@pytest.mark.parametrize('per_sample', [True, False])
def test_gradcheck(impl, per_sample):
    B, N, C, h, m = 2, 5, 8, 2, 3
    g = torch.Generator().manual_seed(4)
    w = {k: v.double() for k, v in _weights(C).items()}
    x = torch.randn(B, N, C, generator=g, dtype=torch.float64,
                    requires_grad=True)
    shape = (B, m, C) if per_sample else (m, C)
    p = torch.randn(*shape, generator=g, dtype=torch.float64,
                    requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x, p: prompt_cross_attention(x, p, num_heads=h, impl=impl,
                                            **w), (x, p))
