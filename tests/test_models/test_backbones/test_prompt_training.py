"""Prompt initialisation and per-sample prompt dropout as the reference."""
import math

import pytest
import torch
import torch.nn as nn

from mmcvpt.models import CVPTViT, VPTViT
from tests.test_models.reference import ref_vit

TINY = dict(embed_dims=32, num_layers=3, num_heads=4, feedforward_channels=64)


def _arch(L, C):
    return dict(embed_dims=C, num_layers=L, num_heads=4,
                feedforward_channels=8)


@pytest.mark.parametrize('L,m,C', [(12, 10, 768), (12, 200, 768),
                                   (4, 3, 64), (2, 50, 128)])
def test_xavier_init_matches_the_reference_formula(L, m, C):
    model = CVPTViT(arch=_arch(L, C), img_size=16, patch_size=16,
                    num_prompts=m)
    bound = math.sqrt(6 / ((m + L) * C))
    draws = torch.cat([model.prompts.detach().flatten().clone()] + [
        (model.init_prompts(), model.prompts.detach().flatten().clone())[1]
        for _ in range(max(1, 400000 // (L * m * C)))
    ])
    assert draws.abs().max() <= bound
    assert draws.abs().max() > 0.99 * bound
    assert draws.std() == pytest.approx(bound / math.sqrt(3), rel=0.02)
    torch.manual_seed(7)
    model.init_prompts()
    torch.manual_seed(7)
    ref = torch.empty(L, m, C)
    nn.init.xavier_uniform_(ref)
    assert torch.equal(model.prompts.detach(), ref)


def test_per_layer_init_is_an_option():
    L, m, C = 12, 10, 768
    model = CVPTViT(arch=_arch(L, C), img_size=16, patch_size=16,
                    num_prompts=m, prompt_init='xavier_per_layer')
    bound = math.sqrt(6 / (m + C))
    assert bound * 0.99 < model.prompts.abs().max() <= bound
    with pytest.raises(ValueError, match="prompt_init must be one of"):
        CVPTViT(arch=_arch(L, C), num_prompts=m, prompt_init='normal')


class _FixedMask(nn.Module):
    """Prompt dropout with a given mask (L, B, m, C), or (L, m, C) in
    'batch' mode (already scaled)."""

    def __init__(self, mask):
        super().__init__()
        self.mask, self.p = mask, 0.1

    def forward(self, prompts):
        assert prompts.shape == self.mask.shape
        return prompts * self.mask


def _randomised(cls, **kwargs):
    torch.manual_seed(0)
    model = cls(arch=TINY, img_size=32, patch_size=8, out_type='raw',
                **kwargs)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    model.train()
    return model


@pytest.mark.parametrize('cls,kwargs', [
    (CVPTViT, dict(num_prompts=3, cross_attn_impl='folded')),
    (CVPTViT, dict(num_prompts=3, cross_attn_impl='direct')),
    (CVPTViT, dict(num_prompts=3, prompt_position='parallel')),
    (VPTViT, dict(num_prompts=3)),
])
def test_per_sample_dropout_matches_reference(cls, kwargs):
    model = _randomised(cls, **kwargs)
    B, (L, m, C) = 2, model.prompts.shape
    mask = (torch.rand(L, B, m, C, generator=torch.Generator().manual_seed(2))
            > 0.3).float() / 0.7
    model.prompt_dropout = _FixedMask(mask)
    x = torch.randn(B, 3, 32, 32)
    out = model(x)[0]
    weights = torch.randn(out.shape)
    (out * weights).sum().backward()
    leaf = model.prompts.detach().clone().requires_grad_(True)
    ref = ref_vit(x, model.state_dict(), L, TINY['num_heads'], 8,
                  leaf.unsqueeze(1) * mask,
                  kwargs.get('prompt_position', 'after_attn'),
                  vpt=cls is VPTViT)
    (ref * weights).sum().backward()
    assert (out - ref).abs().max() < 1e-5
    torch.testing.assert_close(model.prompts.grad, leaf.grad, atol=1e-5,
                               rtol=1e-4)


@pytest.mark.parametrize('impl', ['folded', 'direct'])
def test_batch_dropout_matches_reference(impl):
    """'batch' mode: one (L, m, C) mask shared by every sample, forward and
    prompt gradients as the reference with those masked prompts."""
    model = _randomised(CVPTViT, num_prompts=3, cross_attn_impl=impl,
                        prompt_dropout_mode='batch')
    L, m, C = model.prompts.shape
    mask = (torch.rand(L, m, C, generator=torch.Generator().manual_seed(4))
            > 0.3).float() / 0.7
    model.prompt_dropout = _FixedMask(mask)
    x = torch.randn(3, 3, 32, 32)
    out = model(x)[0]
    weights = torch.randn(out.shape)
    (out * weights).sum().backward()
    leaf = model.prompts.detach().clone().requires_grad_(True)
    ref = ref_vit(x, model.state_dict(), L, TINY['num_heads'], 8,
                  leaf * mask, 'after_attn')
    (ref * weights).sum().backward()
    assert (out - ref).abs().max() < 1e-5
    torch.testing.assert_close(model.prompts.grad, leaf.grad, atol=1e-5,
                               rtol=1e-4)
    unmasked = ref_vit(x, model.state_dict(), L, TINY['num_heads'], 8,
                       leaf, 'after_attn')
    assert (out - unmasked).abs().max() > 1e-3  # the mask matters


def _layer_prompts(model) -> list:
    """The prompts each layer's cross-attention receives, in call order
    (a forward hook on ``cross_attn_ops``)."""
    seen = []
    for op in model.cross_attn_ops:
        op.register_forward_hook(
            lambda mod, args, out: seen.append(args[1].detach()))
    return seen


def test_masks_differ_across_the_batch_and_p0_is_the_shared_path():
    model = _randomised(CVPTViT, num_prompts=4, prompt_dropout=0.5)
    seen = _layer_prompts(model)
    x = torch.randn(3, 3, 32, 32)
    model(x)
    assert seen[0].shape == (3, 4, 32)
    kept = seen[0] != 0
    assert not torch.equal(kept[0], kept[1]) and not torch.equal(
        kept[1], kept[2])
    model.prompt_dropout_mode = 'batch'
    seen.clear()
    model(x)
    assert seen[0].shape == (4, 32)  # one mask for the batch

    for impl in ('folded', 'direct'):
        plain = _randomised(CVPTViT, num_prompts=4, prompt_dropout=0.,
                            cross_attn_impl=impl)
        train_out = plain(x)[0]
        plain.eval()
        assert torch.equal(train_out, plain(x)[0])


def test_batch_mode_shares_one_real_mask_sample_mode_draws_each():
    """The model's own dropout (no injected mask): in 'batch' mode the same
    image repeated B times gives B equal outputs, a fresh mask per forward,
    and about p of the prompt entries dropped; in 'sample' mode the copies
    differ."""
    p, B = 0.3, 4
    model = _randomised(CVPTViT, num_prompts=100, prompt_dropout=p,
                        prompt_dropout_mode='batch')
    seen = _layer_prompts(model)
    x = torch.randn(1, 3, 32, 32).expand(B, -1, -1, -1)
    torch.manual_seed(0)
    with torch.no_grad():
        out = model(x)[0]
        again = model(x)[0]
    # equal up to float rounding (the copies sit in different GEMM rows)
    assert max((out[b] - out[0]).abs().max() for b in range(1, B)) < 1e-5
    assert (out - again).abs().max() > 1e-3  # a new mask each forward
    prompts = model.prompts.detach()
    masked = torch.stack(seen[:len(model.layers)])  # (L, m, C), one forward
    assert masked.shape == prompts.shape
    dropped = masked == 0
    assert dropped.float().mean().item() == pytest.approx(p, abs=0.02)
    # kept entries are the prompts scaled by 1 / (1 - p), as nn.Dropout
    torch.testing.assert_close(masked[~dropped], prompts[~dropped] / (1 - p))
    model.eval()
    with torch.no_grad():
        plain = model(x)[0]
    assert (out - plain).abs().max() > 1e-3  # the mask changed the output

    model.train()
    model.prompt_dropout_mode = 'sample'
    seen.clear()
    with torch.no_grad():
        out = model(x)[0]
    assert min((out[a] - out[b]).abs().max()
               for a in range(B) for b in range(a)) > 1e-3
    masked = torch.stack(seen)  # (L, B, m, C)
    assert masked.shape == (len(model.layers), B) + prompts.shape[1:]
    assert (masked == 0).float().mean().item() == pytest.approx(p, abs=0.02)
