import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmcvpt.models import CVPTViT
from tests.seg_fixtures import load_tool

TOOL = 'tools/model_converters/vit2mmcvpt.py'
C, HEADS, L, P, FF = 32, 4, 2, 8, 64
D = C // HEADS


@pytest.fixture(scope='module')
def tool():
    return load_tool(TOOL)


def _rand(*shape, g):
    return (torch.randn(*shape, generator=g) * 0.2).numpy()


def google_arrays(seed=0, C=C, HEADS=HEADS, L=L, P=P, FF=FF, tokens=17):
    """Google ViT .npz keys and shapes (flax: kernels are (in, out)); the
    module's small sizes unless given."""
    g = torch.Generator().manual_seed(seed)
    D = C // HEADS
    a = {
        'embedding/kernel': _rand(P, P, 3, C, g=g),
        'embedding/bias': _rand(C, g=g),
        'cls': _rand(1, 1, C, g=g),
        'Transformer/posembed_input/pos_embedding': _rand(1, tokens, C, g=g),
        'Transformer/encoder_norm/scale': 1 + _rand(C, g=g),
        'Transformer/encoder_norm/bias': _rand(C, g=g),
        'head/kernel': _rand(C, 10, g=g),
        'head/bias': _rand(10, g=g),
    }
    for i in range(L):
        b = f'Transformer/encoderblock_{i}/'
        att = b + 'MultiHeadDotProductAttention_1/'
        for n in ('LayerNorm_0', 'LayerNorm_2'):
            a[f'{b}{n}/scale'] = 1 + _rand(C, g=g)
            a[f'{b}{n}/bias'] = _rand(C, g=g)
        for n in ('query', 'key', 'value'):
            a[f'{att}{n}/kernel'] = _rand(C, HEADS, D, g=g)
            a[f'{att}{n}/bias'] = _rand(HEADS, D, g=g)
        a[f'{att}out/kernel'] = _rand(HEADS, D, C, g=g)
        a[f'{att}out/bias'] = _rand(C, g=g)
        a[f'{b}MlpBlock_3/Dense_0/kernel'] = _rand(C, FF, g=g)
        a[f'{b}MlpBlock_3/Dense_0/bias'] = _rand(FF, g=g)
        a[f'{b}MlpBlock_3/Dense_1/kernel'] = _rand(FF, C, g=g)
        a[f'{b}MlpBlock_3/Dense_1/bias'] = _rand(C, g=g)
    return {k: v.astype(np.float32) for k, v in a.items()}


def google_math(a):
    """Per-layer (in, out) matrices straight from Google's layout."""
    t = lambda k: torch.from_numpy(a[k])  # noqa: E731
    layers = []
    for i in range(L):
        b = f'Transformer/encoderblock_{i}/'
        att = b + 'MultiHeadDotProductAttention_1/'
        layers.append(
            dict(
                ln1=(t(b + 'LayerNorm_0/scale'), t(b + 'LayerNorm_0/bias')),
                ln2=(t(b + 'LayerNorm_2/scale'), t(b + 'LayerNorm_2/bias')),
                q=(t(att + 'query/kernel').reshape(C, C),
                   t(att + 'query/bias').reshape(C)),
                k=(t(att + 'key/kernel').reshape(C, C),
                   t(att + 'key/bias').reshape(C)),
                v=(t(att + 'value/kernel').reshape(C, C),
                   t(att + 'value/bias').reshape(C)),
                o=(t(att + 'out/kernel').reshape(C, C), t(att + 'out/bias')),
                fc1=(t(b + 'MlpBlock_3/Dense_0/kernel'),
                     t(b + 'MlpBlock_3/Dense_0/bias')),
                fc2=(t(b + 'MlpBlock_3/Dense_1/kernel'),
                     t(b + 'MlpBlock_3/Dense_1/bias'))))
    return dict(
        patch=(t('embedding/kernel').permute(3, 2, 0, 1), t('embedding/bias')),
        cls=t('cls'),
        pos=t('Transformer/posembed_input/pos_embedding'),
        norm=(t('Transformer/encoder_norm/scale'),
              t('Transformer/encoder_norm/bias')),
        layers=layers)


def timm_state(seed=1):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g) * 0.2  # noqa: E731
    s = {
        'patch_embed.proj.weight': r(C, 3, P, P),
        'patch_embed.proj.bias': r(C),
        'cls_token': r(1, 1, C),
        'pos_embed': r(1, 17, C),
        'norm.weight': 1 + r(C),
        'norm.bias': r(C),
        'head.weight': r(10, C),
        'head.bias': r(10)
    }
    for i in range(L):
        b = f'blocks.{i}.'
        s.update({
            b + 'norm1.weight': 1 + r(C),
            b + 'norm1.bias': r(C),
            b + 'attn.qkv.weight': r(3 * C, C),
            b + 'attn.qkv.bias': r(3 * C),
            b + 'attn.proj.weight': r(C, C),
            b + 'attn.proj.bias': r(C),
            b + 'norm2.weight': 1 + r(C),
            b + 'norm2.bias': r(C),
            b + 'mlp.fc1.weight': r(FF, C),
            b + 'mlp.fc1.bias': r(FF),
            b + 'mlp.fc2.weight': r(C, FF),
            b + 'mlp.fc2.bias': r(C)
        })
    return s


def timm_math(s):
    layers = []
    for i in range(L):
        b = f'blocks.{i}.'
        w, bias = s[b + 'attn.qkv.weight'], s[b + 'attn.qkv.bias']
        layers.append(
            dict(
                ln1=(s[b + 'norm1.weight'], s[b + 'norm1.bias']),
                ln2=(s[b + 'norm2.weight'], s[b + 'norm2.bias']),
                q=(w[:C].T, bias[:C]),
                k=(w[C:2 * C].T, bias[C:2 * C]),
                v=(w[2 * C:].T, bias[2 * C:]),
                o=(s[b + 'attn.proj.weight'].T, s[b + 'attn.proj.bias']),
                fc1=(s[b + 'mlp.fc1.weight'].T, s[b + 'mlp.fc1.bias']),
                fc2=(s[b + 'mlp.fc2.weight'].T, s[b + 'mlp.fc2.bias'])))
    return dict(
        patch=(s['patch_embed.proj.weight'], s['patch_embed.proj.bias']),
        cls=s['cls_token'],
        pos=s['pos_embed'],
        norm=(s['norm.weight'], s['norm.bias']),
        layers=layers)


def reference_forward(img, w):
    """Plain ViT from (in, out) matrices; returns the final cls token."""
    ln = lambda t, p: F.layer_norm(t, (C, ), *p, eps=1e-6)  # noqa: E731
    lin = lambda t, p: t @ p[0] + p[1]  # noqa: E731
    x = F.conv2d(img, *w['patch'], stride=P).flatten(2).transpose(1, 2)
    x = torch.cat([w['cls'].expand(len(x), -1, -1), x], 1) + w['pos']
    for lw in w['layers']:
        h = ln(x, lw['ln1'])
        q, k, v = (
            lin(h, lw[n]).unflatten(-1, (HEADS, D)).transpose(1, 2)
            for n in 'qkv')
        a = torch.softmax(q @ k.transpose(-1, -2) / D**0.5, -1) @ v
        x = x + lin(a.transpose(1, 2).flatten(2), lw['o'])
        x = x + lin(F.gelu(lin(ln(x, lw['ln2']), lw['fc1'])), lw['fc2'])
    return ln(x, w['norm'])[:, 0]


def _check(tool, src, dst, math, capsys):
    tool.main([str(src), str(dst)])
    out = capsys.readouterr().out
    model = CVPTViT(
        arch=dict(
            embed_dims=C,
            num_layers=L,
            num_heads=HEADS,
            feedforward_channels=FF),
        img_size=32,
        patch_size=P,
        num_prompts=0)
    model.eval()
    ckpt = torch.load(dst, weights_only=True)
    model.load_state_dict(ckpt['state_dict'])  # strict: every key maps
    img = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        diff = (model(img)[0] - reference_forward(img, math)).abs().max()
    assert diff < 1e-5
    return out


def test_google_npz(tool, tmp_path, capsys):
    arrays = google_arrays()
    np.savez(tmp_path / 'ViT-B_16.npz', **arrays)
    out = _check(tool, tmp_path / 'ViT-B_16.npz', tmp_path / 'o/vit.pth',
                 google_math(arrays), capsys)
    assert 'google layout, 2 layers' in out
    assert 'dropped 2 keys: head/bias, head/kernel' in out


@pytest.mark.parametrize('fmt', ['pth', 'safetensors'])
def test_timm(tool, tmp_path, capsys, fmt):
    state = timm_state()
    src = tmp_path / f'timm.{fmt}'
    if fmt == 'pth':
        torch.save(state, src)
    else:
        from safetensors.torch import save_file
        save_file(state, str(src))
    out = _check(tool, src, tmp_path / 'vit.pth', timm_math(state), capsys)
    assert 'timm layout' in out and 'head.bias, head.weight' in out


def test_mmseg(tool, tmp_path, capsys):
    t = timm_state()
    s = {}
    for k, v in t.items():  # mmseg's names for the same tensors
        k = (
            k.replace('patch_embed.proj.', 'patch_embed.projection.').replace(
                'blocks.', 'layers.').replace('.norm1.', '.ln1.').replace(
                    '.norm2.',
                    '.ln2.').replace('attn.qkv.weight',
                                     'attn.attn.in_proj_weight').replace(
                                         'attn.qkv.bias',
                                         'attn.attn.in_proj_bias').replace(
                                             'attn.proj.',
                                             'attn.attn.out_proj.').replace(
                                                 'mlp.fc1.',
                                                 'ffn.layers.0.0.').replace(
                                                     'mlp.fc2.',
                                                     'ffn.layers.1.'))
        k = 'ln1.' + k[5:] if k.startswith('norm.') else k
        if not k.startswith('head'):
            s['backbone.' + k] = v
    s['decode_head.conv_seg.weight'] = torch.zeros(3, 3)
    torch.save({'state_dict': s, 'meta': {}}, tmp_path / 'seg.pth')
    out = _check(tool, tmp_path / 'seg.pth', tmp_path / 'vit.pth',
                 timm_math(t), capsys)
    assert 'mmseg layout' in out and 'decode_head.conv_seg.weight' in out


def test_unknown_layout_fails_clearly(tool, tmp_path):
    torch.save({'foo.weight': torch.zeros(2)}, tmp_path / 'x.pth')
    with pytest.raises(
            SystemExit,
            match=r'x\.pth: unknown checkpoint '
            r'layout: expected Google ViT'):
        tool.main([str(tmp_path / 'x.pth'), str(tmp_path / 'y.pth')])
    assert not (tmp_path / 'y.pth').exists()
    with pytest.raises(SystemExit, match='input checkpoint not found'):
        tool.main([str(tmp_path / 'missing.npz'), str(tmp_path / 'y.pth')])
