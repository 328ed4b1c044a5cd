import torch
from mmpretrain.models.utils import MultiheadAttention

from mmcvpt.models.layers import (AttentionProjections, project_prompts,
                                  project_queries)


def test_attention_projections_mirror_mmpretrain_attention():
    C = 16
    attn = MultiheadAttention(C, 4)
    names = {k for k in attn.state_dict() if k.startswith(('qkv', 'proj'))}
    assert set(AttentionProjections(C).state_dict()) == names
    assert set(AttentionProjections(C, qkv_bias=False).state_dict()) == \
        names - {'qkv.bias'}


def test_projections_split_heads():
    B, N, C, h, m = 2, 5, 12, 3, 4
    g = torch.Generator().manual_seed(0)
    w = torch.randn(3 * C, C, generator=g, dtype=torch.float64)
    b = torch.randn(3 * C, generator=g, dtype=torch.float64)
    p = torch.randn(m, C, generator=g, dtype=torch.float64)
    x = torch.randn(B, N, C, generator=g, dtype=torch.float64)
    q = project_queries(x, w, b)
    torch.testing.assert_close(q, x @ w[:C].T + b[:C])
    k, v = project_prompts(p, w, b, h)
    assert k.shape == v.shape == (h, m, C // h)
    d = C // h
    for i in range(h):
        rows = slice(C + i * d, C + (i + 1) * d)
        torch.testing.assert_close(k[i], p @ w[rows].T + b[rows])
        rows = slice(2 * C + i * d, 2 * C + (i + 1) * d)
        torch.testing.assert_close(v[i], p @ w[rows].T + b[rows])
    k, v = project_prompts(p.expand(B, -1, -1), w, None, h)
    assert k.shape == v.shape == (B, h, m, d)
