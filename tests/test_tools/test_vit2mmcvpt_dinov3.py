"""vit2mmcvpt on DINOv3: Meta's official layout and timm's, tiny widths.

A timm DINOv3 model (``timm.models.eva.Eva`` with DINOv3's rotary
positions, storage tokens and LayerScale) is drawn at random; its state
dict is the timm-layout file, and the same weights written in Meta's names
(``storage_tokens``, ``ls1.gamma``, ``qkv.bias`` + ``bias_mask``, ``mlp.w1``
/``w2``/``w3``, ``rope_embed.periods`` in bfloat16, ``mask_token``, the 7B's
``local_cls_norm``) are the official file; timm's own checkpoint filter
reads the official file back to the same model (so it is the layout timm
knows). Each converted file loads strictly into CVPTViT(num_prompts=0),
whose tokens must equal timm's at two input sizes.
"""
from functools import partial

import pytest
import torch

from mmcvpt.models import CVPTViT
from tests.seg_fixtures import load_tool
from tests.test_tools.test_vit2mmcvpt_foundation import randomize_

eva = pytest.importorskip('timm.models.eva')
from timm.layers import LayerNorm  # noqa: E402

TOOL = 'tools/model_converters/vit2mmcvpt.py'
C, HEADS, L, R = 48, 4, 2, 4
SIZES = [(64, 64), (48, 96)]  # 4x4 and 3x6 patches
VARIANTS = {
    # name: timm kwargs, our FFN hidden width's feedforward_channels
    'vit': (dict(qkv_bias=True), dict(feedforward_channels=4 * C)),
    'splus_swiglu': (dict(qkv_bias=True, swiglu_mlp=True, swiglu_align_to=8),
                     dict(feedforward_channels=288,
                          ffn_type='swiglu_fused')),
    # the 7B: SwiGLU aligned to 64 (96 -> 128), no qkv bias, local_cls_norm
    '7b': (dict(qkv_bias=False, swiglu_mlp=True, swiglu_align_to=64,
                mlp_ratio=2.), dict(feedforward_channels=192,
                                    ffn_type='swiglu_fused')),
}


@pytest.fixture(scope='module')
def tool():
    return load_tool(TOOL)


def _timm_model(variant, seed=0):
    torch.manual_seed(seed)
    model = eva.Eva(
        img_size=64, patch_size=16, num_classes=0, embed_dim=C, depth=L,
        num_heads=HEADS, init_values=1e-5, rope_type='dinov3',
        rope_temperature=100, rope_rotate_half=True, use_rot_pos_emb=True,
        use_abs_pos_emb=False, num_reg_tokens=R, use_fc_norm=False,
        norm_layer=partial(LayerNorm, eps=1e-5), dynamic_img_size=True,
        **VARIANTS[variant][0])
    return randomize_(model, seed, scales=('gamma_1', 'gamma_2')).eval()


def _official(timm_state: dict, variant) -> dict:
    """The timm weights in Meta's DINOv3 names (inverse of timm's filter)."""
    g = torch.Generator().manual_seed(7)
    out = {}
    for key, value in timm_state.items():
        key = key.replace('reg_token', 'storage_tokens')
        key = key.replace('gamma_1', 'ls1.gamma').replace('gamma_2',
                                                          'ls2.gamma')
        key = key.replace('mlp.fc1_g', 'mlp.w1').replace('mlp.fc1_x',
                                                         'mlp.w2')
        if variant != 'vit':
            key = key.replace('mlp.fc2', 'mlp.w3')
        if key.endswith('attn.q_bias'):
            v = timm_state[key.replace('q_bias', 'v_bias')]
            k = torch.randn(C, generator=g)  # masked: must not count
            out[key.replace('q_bias', 'qkv.bias')] = torch.cat([value, k, v])
            out[key.replace('q_bias', 'qkv.bias_mask')] = torch.cat(
                [torch.ones(C), torch.zeros(C), torch.ones(C)])
            continue
        if key.endswith('attn.v_bias'):
            continue
        out[key] = value.clone()
    d4 = C // HEADS // 4
    out['rope_embed.periods'] = (100.**(torch.arange(d4) / d4)).bfloat16()
    out['mask_token'] = torch.randn(1, C, generator=g)
    if variant == '7b':
        out['local_cls_norm.weight'] = torch.randn(C, generator=g)
        out['local_cls_norm.bias'] = torch.randn(C, generator=g)
    return out


def _ours(state, variant):
    kw = dict(VARIANTS[variant][1])
    ffn_type = kw.pop('ffn_type', None)
    model = CVPTViT(
        arch=dict(embed_dims=C, num_layers=L, num_heads=HEADS, **kw),
        img_size=64, patch_size=16, num_prompts=0, out_type='raw',
        layer_scale_init_value=1e-5, num_register_tokens=R,
        rope=dict(base=100.), norm_cfg=dict(type='LN', eps=1e-5),
        qkv_bias=VARIANTS[variant][0]['qkv_bias'],
        layer_cfgs=dict(ffn_type=ffn_type) if ffn_type else dict())
    model.load_state_dict(state, strict=True)
    model.eval()  # BaseBackbone.train() returns None
    return model


def _max_diff(ours, timm_model):
    diffs = []
    for size in SIZES:
        g = torch.Generator().manual_seed(1)
        x = torch.randn(2, 3, *size, generator=g)
        with torch.no_grad():
            ref = timm_model.forward_features(x)
            ref = torch.cat([ref[:, :1], ref[:, 1 + R:]], dim=1)
            out = ours(x)[0]
        assert out.shape == ref.shape == (2, 1 + size[0] * size[1] // 256, C)
        diffs.append((out - ref).abs().max().item())
    return max(diffs)


@pytest.mark.parametrize('variant', VARIANTS)
def test_timm_layout_equals_timm(tool, variant):
    ref = _timm_model(variant)
    result = tool.convert(ref.state_dict())
    assert result.layout == 'timm-dinov3'
    assert 'pos_embed' not in result.state
    bias = result.state.get('layers.0.attn.qkv.bias')
    if VARIANTS[variant][0]['qkv_bias']:
        assert torch.equal(bias[C:2 * C], torch.zeros(C))
    else:
        assert bias is None
    assert _max_diff(_ours(result.state, variant), ref) < 1e-4


@pytest.mark.parametrize('variant', VARIANTS)
def test_official_layout_equals_timm(tool, variant):
    ref = _timm_model(variant)
    official = _official(ref.state_dict(), variant)
    # timm's own filter reads this layout back to the same model
    again = _timm_model(variant, seed=5)
    again.load_state_dict(eva.checkpoint_filter_fn(dict(official), again))
    assert _max_diff(_ours(tool.convert(dict(official)).state, variant),
                     again) < 1e-4
    result = tool.convert(official)
    assert result.layout == 'dinov3' and result.periods == C // HEADS // 4
    dropped = set(result.dropped)
    assert {'dinov3:mask_token', 'rope_embed.periods'} <= dropped
    assert ('local_cls_norm.weight' in dropped) == (variant == '7b')
    assert not any('bias_mask' in k for k in result.state)
    assert _max_diff(_ours(result.state, variant), ref) < 1e-4


def test_cli_prints_mapping_drops_and_settings(tool, tmp_path, capsys):
    official = _official(_timm_model('7b').state_dict(), '7b')
    src, dst = tmp_path / 'dinov3_vit7b16_pretrain_lvd1689m.pth', \
        tmp_path / 'out.pth'
    torch.save(official, src)
    tool.main([str(src), str(dst)])
    printed = capsys.readouterr().out
    assert 'dinov3 layout, 2 layers' in printed and 'no pos_embed' in printed
    assert "dropped DINOv3's mask token (used only by its masked-image " \
        'pretraining): 1 key (mask_token)' in printed
    assert "dropped DINOv3's rotary periods (recomputed from rope base " \
        '100; checked equal): 1 key (rope_embed.periods)' in printed
    assert "dropped the 7B's class-token norm of local crops (pretraining " \
        'only): 2 keys (local_cls_norm.*)' in printed
    assert '2 SwiGLU FFNs fused into w12 (gate, then value) + w3' in printed
    assert 'backbone settings: arch=dict(embed_dims=48, num_layers=2, ' \
        'num_heads=4, feedforward_channels=192), ' \
        "layer_cfgs=dict(ffn_type='swiglu_fused'), qkv_bias=False, " \
        'patch_size=16, layer_scale_init_value=1e-5, num_register_tokens=4,' \
        " rope=dict(base=100.), norm_cfg=dict(type='LN', eps=1e-5)" in printed
    assert 'rotary positions: computed for every input size' in printed
    saved = torch.load(dst, weights_only=True)
    assert set(saved['state_dict']) == set(tool.convert(official).state)


def test_settings_name_the_released_arch(tool):
    """Real widths: the arch names, on a meta-device state (no memory)."""
    with torch.device('meta'):
        for name in ('dinov3-l', 'dinov3-7b'):
            model = CVPTViT(arch=name, img_size=32, patch_size=16,
                            num_prompts=0, layer_scale_init_value=1e-5,
                            num_register_tokens=4, rope=dict(base=100.),
                            out_indices=[0])
            settings = tool.backbone_settings(model.state_dict(), 'dinov3',
                                              64 if name == 'dinov3-l' else
                                              128)
            assert settings.startswith(f"arch='{name}', patch_size=16")
            assert 'assumed' not in settings
    # timm's files store no periods: a width of no DINOv3 arch says so
    timm_state = tool.convert(_timm_model('vit').state_dict()).state
    assert tool.backbone_settings(timm_state, 'timm-dinov3').endswith(
        '(num_heads is not stored in the weights: 64-dim heads assumed)')


def test_bad_dinov3_files_one_line(tool):
    official = _official(_timm_model('vit').state_dict(), 'vit')
    bad = dict(official, **{'rope_embed.periods': torch.ones(3)})
    with pytest.raises(tool.ConversionError, match=r'^rope_embed\.periods '
                       r'\[1\.0, 1\.0, 1\.0\]\.\.\. are not those of rope '
                       'base 100'):
        tool.convert(bad)
    bad = dict(official, **{'blocks.0.attn.qkv.bias_mask': torch.ones(3 * C)})
    with pytest.raises(tool.ConversionError, match=r'^blocks\.0\.attn\.qkv\.'
                       'bias_mask: expected 1 on the query and value biases'):
        tool.convert(bad)
    bad = dict(official, **{'cls_norm.weight': torch.ones(C)})
    with pytest.raises(tool.ConversionError, match=r'^cls_norm\.\*: DINOv3 '
                       'with a separate norm'):
        tool.convert(bad)
