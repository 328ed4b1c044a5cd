import pytest
import torch
from mmengine.registry import DefaultScope
from mmseg.registry import MODELS as SEG_MODELS

from mmcvpt.models import VPTViT
from tests.test_models.reference import ref_vit

TINY = dict(embed_dims=32, num_layers=3, num_heads=4, feedforward_channels=64)


@pytest.mark.parametrize('m', [1, 6])
def test_parity_with_reference_concatenation(m):
    model = VPTViT(arch=TINY, img_size=32, patch_size=8, num_prompts=m,
                   out_type='raw')
    model.eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = model(x)[0]
        ref = ref_vit(x, model.state_dict(), 3, 4, 8, model.prompts,
                      vpt=True)
    # Prompts are dropped after every layer: output length is 1 + HW.
    assert out.shape == (2, 1 + 16, 32)
    assert (out - ref).abs().max() < 1e-5


def test_frozen_and_featmap():
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = SEG_MODELS.build(
            dict(type='VPTViT', arch=TINY, img_size=32, patch_size=8,
                 num_prompts=5, out_type='featmap', out_indices=(0, 1, 2)))
    assert [n for n, p in model.named_parameters() if p.requires_grad] == \
        ['prompts']
    feats = model(torch.randn(2, 3, 48, 32))
    assert [f.shape for f in feats] == [(2, 32, 6, 4)] * 3
