import cv2
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import MODELS

import mmcvpt  # noqa: F401
from mmcvpt.models.layers import prompt_attention_probs
from tests.seg_fixtures import load_tool, make_sample, tiny_config
from tests.test_models.reference import ref_attention, ref_block

TOOL = 'tools/visualization/prompt_attention.py'
HEADS, PATCH = 4, 16  # the tiny config's backbone


@pytest.fixture(scope='module')
def tool():
    return load_tool(TOOL)


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('attn')
    sample = make_sample(tmp / 'samples')
    cfg = tiny_config(tmp / 'tiny.py', sample)
    config = Config.fromfile(cfg)
    with MODELS.switch_scope_and_registry('mmseg') as reg:
        model = reg.build(config.model)
    # Freshly initialised prompts draw an almost uniform 1/m from every
    # patch, which any map would match; larger ones make the maps differ.
    torch.manual_seed(0)
    model.backbone.prompts.data.normal_(std=3.)
    torch.save({
        'state_dict': model.state_dict(),
        'meta': {}
    }, tmp / 'ckpt.pth')
    return tmp, cfg, sample


def _expected_maps(config, ckpt, image, index, patch=PATCH):
    """The tool's maps for block ``index``, from the checkpoint's tensors
    with tests/test_models/reference.py and per-head loops (register tokens
    and LayerScale where the checkpoint has them)."""
    sd = {
        k[len('backbone.'):]: v
        for k, v in torch.load(ckpt, weights_only=True)['state_dict'].items()
        if k.startswith('backbone.')
    }
    pre = config.model.data_preprocessor
    img = torch.from_numpy(image[..., ::-1].copy()).permute(2, 0, 1).float()
    img = (img - torch.tensor(pre.mean)[:, None, None]) / \
        torch.tensor(pre.std)[:, None, None]
    x = F.conv2d(
        img[None],
        sd['patch_embed.projection.weight'],
        sd['patch_embed.projection.bias'],
        stride=patch)
    gh, gw = x.shape[-2:]
    x = x.flatten(2).transpose(1, 2)  # (1, gh*gw, C)
    C = x.shape[-1]
    # The position embeddings of the 64x64 input (s x s patches), bicubic
    # to gh x gw.
    s = round((sd['pos_embed'].shape[1] - 1)**0.5)
    pos = sd['pos_embed'][:, 1:].reshape(1, s, s, C).permute(0, 3, 1, 2)
    pos = F.interpolate(
        pos, size=(gh, gw), mode='bicubic',
        align_corners=False).flatten(2).transpose(1, 2)
    # (cls, registers, patches); the registers take no position embedding.
    regs = sd.get('register_tokens', x[:, :0])
    x = torch.cat([sd['cls_token'] + sd['pos_embed'][:, :1], regs, x + pos],
                  1)
    prompts = sd['prompts']
    for i in range(index):
        x = ref_block(x, sd, f'layers.{i}.', HEADS, prompts[i], 'after_attn')
    p = f'layers.{index}.'
    ln = F.layer_norm(
        x, (C, ), sd[p + 'ln1.weight'], sd[p + 'ln1.bias'], eps=1e-6)
    qkv_w, qkv_b = sd[p + 'attn.qkv.weight'], sd[p + 'attn.qkv.bias']
    proj_w, proj_b = sd[p + 'attn.proj.weight'], sd[p + 'attn.proj.bias']
    gamma1 = sd.get(p + 'attn.gamma1.weight', 1.)
    x = x + gamma1 * ref_attention(ln, ln, qkv_w, qkv_b, proj_w, proj_b,
                                   HEADS)
    ca = gamma1 * ref_attention(x, prompts[index][None], qkv_w, qkv_b, proj_w,
                                proj_b, HEADS)
    change = ca.norm(dim=-1) / x.norm(dim=-1)  # (1, N)
    d = C // HEADS
    probs = 0
    for h in range(HEADS):
        q = x[0] @ qkv_w[h * d:(h + 1) * d].T + qkv_b[h * d:(h + 1) * d]
        k = prompts[index] @ qkv_w[C + h * d:C + (h + 1) * d].T + \
            qkv_b[C + h * d:C + (h + 1) * d]
        probs = probs + (q @ k.T / d**0.5).softmax(-1) / HEADS  # (N, m)
    # Patch tokens only, in raster order: row r, column c is token
    # 1 + R + r * gw + c.
    first = 1 + regs.shape[1]
    return (change[0, first:].reshape(gh, gw),
            probs[first:].T.reshape(-1, gh, gw))


def test_probs_rows_sum_to_one():
    C, h, m = 32, 4, 7
    probs = prompt_attention_probs(
        torch.randn(2, 9, C), torch.randn(m, C), torch.randn(3 * C, C),
        torch.randn(3 * C), h)
    assert probs.shape == (2, h, 9, m)
    assert torch.allclose(probs.sum(-1), torch.ones(2, h, 9), atol=1e-6)


def test_maps_match_an_independent_computation(tool, setup):
    tmp, cfg, sample = setup
    image = cv2.imread(str(sample / 'images/validation/ADE_val_00000001.jpg'))
    assert image.shape == (240, 320, 3)
    model = tool.build_model(str(cfg), str(tmp / 'ckpt.pth'))
    resized, maps = tool.prompt_attention(model, image, {0, 3})
    # Forward hooks, removed afterwards; no method of the model replaced.
    backbone = model.backbone
    assert not any(op._forward_hooks for op in backbone.cross_attn_ops)
    assert 'cross_attention' not in vars(backbone)
    # Shorter side to the 64-pixel input, 320 * 64 / 240 = 85.3 rounded to
    # whole 16-pixel patches: 80.
    assert resized.shape == (64, 80, 3)
    assert sorted(maps) == [0, 3]
    config = Config.fromfile(cfg)
    for index in (0, 3):
        change, probs = maps[index]
        want_change, want_probs = _expected_maps(config, tmp / 'ckpt.pth',
                                                 resized, index)
        assert change.shape == (4, 5) and probs.shape == (4, 4, 5)
        torch.testing.assert_close(change, want_change, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(probs, want_probs, atol=1e-5, rtol=1e-4)
        # Far from uniform (1/4), so that a misplaced patch would show.
        assert want_probs.max() - want_probs.min() > 0.1
        assert want_change.max() - want_change.min() > 0.1


def test_maps_skip_register_tokens(tool, setup):
    """DINOv2 with registers, 14-px patches: inside the blocks the tokens
    are (cls, 2 registers, patches); the maps hold the patches only."""
    tmp, cfg, sample = setup
    options = {
        'model.backbone.patch_size': 14,
        'model.backbone.num_register_tokens': 2,
        'model.backbone.layer_scale_init_value': 1e-5,
    }
    config = Config.fromfile(cfg)
    config.merge_from_dict(options)
    with MODELS.switch_scope_and_registry('mmseg') as reg:
        model = reg.build(config.model)
    torch.manual_seed(1)
    backbone = model.backbone
    backbone.prompts.data.normal_(std=3.)
    backbone.register_tokens.data.normal_(std=3.)
    for layer in backbone.layers:  # LayerScale far from its 1e-5 init
        for gamma in (layer.attn.gamma1, layer.ffn.gamma2):
            gamma.weight.data.uniform_(0.5, 1.5)
    ckpt = tmp / 'ckpt_registers.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)

    image = cv2.imread(str(sample / 'images/validation/ADE_val_00000001.jpg'))
    model = tool.build_model(str(cfg), str(ckpt), options)
    assert model.backbone.num_register_tokens == 2
    resized, maps = tool.prompt_attention(model, image, {2})
    # 240 x 320 -> shorter side 64, whole 14-px patches: 5 x 6 patches.
    assert resized.shape == (70, 84, 3)
    change, probs = maps[2]
    assert change.shape == (5, 6) and probs.shape == (4, 5, 6)
    want_change, want_probs = _expected_maps(config, ckpt, resized, 2,
                                             patch=14)
    torch.testing.assert_close(change, want_change, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(probs, want_probs, atol=1e-5, rtol=1e-4)
    assert want_probs.max() - want_probs.min() > 0.1
    assert want_change.max() - want_change.min() > 0.1


def test_picture_scales_labels_and_aspect(tool, setup, tmp_path):
    tmp, cfg, sample = setup
    image = cv2.imread(str(sample / 'images/validation/ADE_val_00000001.jpg'))
    model = tool.build_model(str(cfg), str(tmp / 'ckpt.pth'))
    resized, maps = tool.prompt_attention(model, image, {0, 3})
    fig = tool.render(resized, maps, 3)
    fig.draw_without_rendering()
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == [
        f'block {i}' if title is None else title for i in (0, 3)
        for title in (None, 'change by cross-attention', 'prompt 0',
                      'prompt 1', 'prompt 2')
    ]
    bars = [ax.get_ylabel() for ax in fig.axes if not ax.get_title()]
    assert bars == [
        '||CA(x)|| / ||x||', 'attention to the prompt\n(line: 1/4)'
    ] * 2
    for row, index in enumerate((0, 3)):
        change, probs = maps[index]
        heat = [ax.images[-1] for ax in panels[5 * row + 1:5 * row + 5]]
        assert heat[0].get_clim() == pytest.approx((0, float(change.max())))
        # One scale for the row's prompts: the largest of the three, at
        # least 1/4 (uniform attention).
        top = max(float(probs[:3].max()), 1 / 4)
        assert top > 1 / 4
        for im in heat[1:]:
            assert im.get_clim() == pytest.approx((0, top))
        for j, im in enumerate(heat[1:]):
            assert torch.equal(torch.as_tensor(im.get_array()), probs[j])
    for ax in panels:  # drawn 80 wide, 64 high as the model's input
        box = ax.get_window_extent()
        assert box.width / box.height == pytest.approx(80 / 64, rel=0.02)

    out = tmp_path / 'attn.png'
    tool.main([
        str(cfg),
        str(tmp / 'ckpt.pth'),
        str(sample / 'images/validation/ADE_val_00000001.jpg'), '--layers',
        '0', '3', '--prompts', '3', '--out',
        str(out)
    ])
    png = cv2.imread(str(out))
    assert png is not None and png.shape[1] > png.shape[0]


def test_bad_layer(tool, setup):
    tmp, cfg, sample = setup
    image = str(sample / 'images/validation/ADE_val_00000001.jpg')
    with pytest.raises(
            SystemExit,
            match=r'--layers \[7\] out of range: the '
            r'backbone has blocks 0\.\.3'):
        tool.main([str(cfg), str(tmp / 'ckpt.pth'), image, '--layers', '7'])
