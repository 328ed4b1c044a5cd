"""vit2mmcvpt on foundation ViTs: official DINOv2 (+ registers, SwiGLU,
chunked blocks), timm's DINOv2 and CLIP models, OpenAI CLIP (state dict and
TorchScript archive).

Each test writes a tiny random checkpoint in the source's own key names and
shapes, converts it, loads the result strictly into CVPTViT(num_prompts=0)
and compares its tokens with an independent forward of the same weights:
timm's model (for official DINOv2 through timm's own checkpoint filter) or,
for OpenAI CLIP, a replica of CLIP's image tower built from torch modules
with OpenAI's parameter names.
"""
import copy
import subprocess
import sys
from collections import OrderedDict
from functools import partial

import pytest
import torch
import torch.nn as nn

from mmcvpt.models import CVPTViT
from mmcvpt.peft import CheckpointError
from tests.seg_fixtures import REPO, load_tool

timm_vit = pytest.importorskip('timm.models.vision_transformer')
from timm.layers import SwiGLUPacked  # noqa: E402

TOOL = 'tools/model_converters/vit2mmcvpt.py'
C, HEADS, L, R = 48, 4, 2, 4  # width, heads, layers, register tokens
FF = 4 * C  # plain MLP hidden width
SWIGLU = 64  # SwiGLU hidden width: w12 (2*64, C), w3 (C, 64)
P, IMG = 14, 42  # DINOv2: 3x3 patches
CLIP_P, CLIP_IMG, PROJ = 16, 48, 24  # CLIP: 3x3 patches, projection dims
N = (IMG // P)**2
QUICK_GELU = dict(act_cfg=dict(type='mmpretrain.QuickGELU'))


@pytest.fixture(scope='module')
def tool():
    return load_tool(TOOL)


def _gen(seed):
    g = torch.Generator().manual_seed(seed)
    return lambda *s: torch.randn(s, generator=g) * 0.3  # noqa: E731


@torch.no_grad()
def randomize_(model, seed, scales=('gamma', )):
    """Every parameter drawn, norms and LayerScales (parameters named
    ``*{scales}``) around 1 so they count."""
    r = _gen(seed)
    norms = {
        f'{name}.weight'
        for name, m in model.named_modules() if isinstance(m, nn.LayerNorm)
    }
    for name, p in model.named_parameters():
        scale = name in norms or name.endswith(scales)
        p.copy_(r(*p.shape) + (1 if scale else 0))
    return model


def official_dinov2(seed=0, registers=0, swiglu=False):
    """The hub files' names and shapes (dinov2_vit*14[_reg4]_pretrain.pth)."""
    r = _gen(seed)
    s = {
        'cls_token': r(1, 1, C),
        'pos_embed': r(1, 1 + N, C),  # class token + patch grid
        'mask_token': r(1, C),
        'patch_embed.proj.weight': r(C, 3, P, P),
        'patch_embed.proj.bias': r(C),
        'norm.weight': 1 + r(C),
        'norm.bias': r(C),
    }
    if registers:
        s['register_tokens'] = r(1, registers, C)
    for i in range(L):
        b = f'blocks.{i}.'
        s.update({
            b + 'norm1.weight': 1 + r(C),
            b + 'norm1.bias': r(C),
            b + 'attn.qkv.weight': r(3 * C, C),
            b + 'attn.qkv.bias': r(3 * C),
            b + 'attn.proj.weight': r(C, C),
            b + 'attn.proj.bias': r(C),
            b + 'ls1.gamma': 1 + r(C),
            b + 'norm2.weight': 1 + r(C),
            b + 'norm2.bias': r(C),
            b + 'ls2.gamma': 1 + r(C),
        })
        if swiglu:
            s.update({
                b + 'mlp.w12.weight': r(2 * SWIGLU, C),
                b + 'mlp.w12.bias': r(2 * SWIGLU),
                b + 'mlp.w3.weight': r(C, SWIGLU),
                b + 'mlp.w3.bias': r(C)
            })
        else:
            s.update({
                b + 'mlp.fc1.weight': r(FF, C),
                b + 'mlp.fc1.bias': r(FF),
                b + 'mlp.fc2.weight': r(C, FF),
                b + 'mlp.fc2.bias': r(C)
            })
    return s


def timm_dinov2(registers=0, swiglu=False):
    """timm's vit_*_patch14[_reg4]_dinov2 recipe at a tiny width."""
    kw = dict(reg_tokens=registers, no_embed_class=True) if registers else {}
    if swiglu:  # vit_giant_patch14_dinov2: fc1 packs w12, fc2 is w3
        kw.update(
            mlp_layer=SwiGLUPacked,
            act_layer=nn.SiLU,
            mlp_ratio=2 * SWIGLU / C + 1e-6)
    return timm_vit.VisionTransformer(
        img_size=IMG,
        patch_size=P,
        embed_dim=C,
        depth=L,
        num_heads=HEADS,
        init_values=1e-5,
        num_classes=0,
        **kw).eval()


def timm_clip(num_classes=PROJ):
    """timm's vit_base_patch16_clip_quickgelu_224 recipe at a tiny width."""
    return timm_vit.VisionTransformer(
        img_size=CLIP_IMG,
        patch_size=CLIP_P,
        embed_dim=C,
        depth=L,
        num_heads=HEADS,
        pre_norm=True,
        norm_layer=partial(nn.LayerNorm, eps=1e-5),
        act_layer='quick_gelu',
        num_classes=num_classes).eval()


def cvpt(clip=False, swiglu=False, **kwargs):
    if clip:
        kwargs.update(
            img_size=CLIP_IMG,
            patch_size=CLIP_P,
            pre_norm=True,
            norm_cfg=dict(type='LN', eps=1e-5),
            layer_cfgs=QUICK_GELU)
    else:
        kwargs.update(img_size=IMG, patch_size=P, layer_scale_init_value=1e-5)
        if swiglu:
            kwargs['layer_cfgs'] = dict(ffn_type='swiglu_fused')
    ff = SWIGLU * 3 // 2 if swiglu else FF  # mmpretrain: hidden = ff * 2/3
    model = CVPTViT(
        arch=dict(
            embed_dims=C, num_layers=L, num_heads=HEADS,
            feedforward_channels=ff),
        num_prompts=0,
        out_type='raw',
        **kwargs)
    model.eval()
    return model


@torch.no_grad()
def max_diff(a, b):
    return (a - b).abs().max().item()


def image(size=IMG):
    return torch.randn(2, 3, size, size,
                       generator=torch.Generator().manual_seed(7))


def check_registers(state, ref_tokens, swiglu=False):
    """CVPTViT(num_register_tokens=R) loads the converted registers and
    gives timm's tokens minus the registers (it never outputs them)."""
    assert state['register_tokens'].shape == (1, R, C)
    model = cvpt(swiglu=swiglu, num_register_tokens=R)
    model.load_state_dict(state)  # strict
    with torch.no_grad():
        got = model(image())[0]  # (B, 1 + N, C)
    want = torch.cat([ref_tokens[:, :1], ref_tokens[:, 1 + R:]], 1)
    assert max_diff(got, want) < 1e-4


@pytest.mark.parametrize('swiglu', [False, True], ids=['mlp', 'swiglu'])
def test_official_dinov2(tool, swiglu):
    state = official_dinov2(swiglu=swiglu)
    out = tool.convert(dict(state))
    assert out.layout == 'dinov2' and out.dropped == ['mask_token']
    ref = timm_dinov2(swiglu=swiglu)
    ref.load_state_dict(timm_vit.checkpoint_filter_fn(dict(state), ref))
    model = cvpt(swiglu=swiglu)
    model.load_state_dict(out.state)  # strict: every key maps
    img = image()
    with torch.no_grad():
        assert max_diff(model(img)[0], ref.forward_features(img)) < 1e-4


def test_official_dinov2_chunked_blocks(tool):
    """Training checkpoints (block_chunks=2): blocks.C.N. with N global."""
    flat = official_dinov2(swiglu=True)
    chunked = {}
    for k, v in flat.items():
        if k.startswith('blocks.'):  # one block per chunk: blocks.i.i.
            k = f'blocks.{k.split(".")[1]}.{k[len("blocks."):]}'
        chunked[k] = v
    out = tool.convert(chunked)
    assert out.layout == 'dinov2' and 'chunks' in out.notes[0]
    ref = tool.convert(dict(flat)).state
    assert out.state.keys() == ref.keys()
    assert all(torch.equal(out.state[k], ref[k]) for k in ref)


@pytest.mark.parametrize('swiglu', [False, True], ids=['mlp', 'swiglu'])
def test_official_dinov2_registers(tool, tmp_path, capsys, swiglu):
    state = official_dinov2(registers=R, swiglu=swiglu)
    torch.save(state, tmp_path / 'dinov2_vitb14_reg4_pretrain.pth')
    tool.main([
        str(tmp_path / 'dinov2_vitb14_reg4_pretrain.pth'),
        str(tmp_path / 'out.pth')
    ])
    printed = capsys.readouterr().out
    assert 'dinov2 layout, 2 layers' in printed
    assert f'LayerScale, {R} register tokens' in printed
    assert "dropped DINOv2's mask token" in printed
    assert f'num_register_tokens={R}' in printed
    assert 'pos_embed is for 42 px (3x3 patches)' in printed
    converted = torch.load(tmp_path / 'out.pth', weights_only=True)
    assert converted['meta']['layout'] == 'dinov2'
    ref = timm_dinov2(registers=R, swiglu=swiglu)
    ref.load_state_dict(timm_vit.checkpoint_filter_fn(dict(state), ref))
    with torch.no_grad():
        ref_tokens = ref.forward_features(image())
    check_registers(converted['state_dict'], ref_tokens, swiglu)


@pytest.mark.parametrize('registers', [0, R], ids=['plain', 'reg4'])
@pytest.mark.parametrize('swiglu', [False, True], ids=['mlp', 'swiglu'])
def test_timm_dinov2(tool, registers, swiglu):
    ref = randomize_(timm_dinov2(registers, swiglu), seed=3)
    state = ref.state_dict()
    if registers:  # timm: cls_token holds its position, pos_embed has none
        assert state['pos_embed'].shape == (1, N, C) and 'reg_token' in state
    out = tool.convert(dict(state))
    assert out.layout == 'timm' and out.dropped == []
    img = image()
    with torch.no_grad():
        ref_tokens = ref.forward_features(img)
    if registers:
        assert any('no class-token slot' in n for n in out.notes)
        check_registers(out.state, ref_tokens, swiglu)
        return
    model = cvpt(swiglu=swiglu)
    model.load_state_dict(out.state)
    with torch.no_grad():
        assert max_diff(model(img)[0], ref_tokens) < 1e-4


def test_timm_clip(tool):
    ref = randomize_(timm_clip(), seed=5)
    state = ref.state_dict()
    assert 'norm_pre.weight' in state and 'patch_embed.proj.bias' not in state
    out = tool.convert(dict(state))
    assert out.layout == 'timm'
    assert out.dropped == ['head.bias', 'head.weight']
    model = cvpt(clip=True)
    model.load_state_dict(out.state)
    img = image(CLIP_IMG)
    with torch.no_grad():
        assert max_diff(model(img)[0], ref.forward_features(img)) < 1e-4


# ---- OpenAI CLIP: a replica of its modules, with its parameter names ----
class QuickGELU(nn.Module):

    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):

    def __init__(self, width, heads):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            OrderedDict(
                c_fc=nn.Linear(width, 4 * width),
                gelu=QuickGELU(),
                c_proj=nn.Linear(4 * width, width)))
        self.ln_2 = nn.LayerNorm(width)

    def forward(self, x):  # (N, B, C): CLIP is sequence-first
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):

    def __init__(self, width, layers, heads):
        super().__init__()
        self.resblocks = nn.Sequential(
            *[ResidualAttentionBlock(width, heads) for _ in range(layers)])

    def forward(self, x):
        return self.resblocks(x)


class VisionTower(nn.Module):

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, C, CLIP_P, CLIP_P, bias=False)
        self.class_embedding = nn.Parameter(torch.zeros(C))
        self.positional_embedding = nn.Parameter(torch.zeros(1 + N, C))
        self.ln_pre = nn.LayerNorm(C)
        self.transformer = Transformer(C, L, HEADS)
        self.ln_post = nn.LayerNorm(C)
        self.proj = nn.Parameter(torch.zeros(C, PROJ))

    def forward(self, img):
        """All tokens after ln_post (CLIP itself keeps only the class
        token, then projects it)."""
        x = self.conv1(img).flatten(2).transpose(1, 2)
        cls = self.class_embedding.expand(len(x), 1, -1)
        x = self.ln_pre(torch.cat([cls, x], 1) + self.positional_embedding)
        x = self.transformer(x.transpose(0, 1)).transpose(0, 1)
        return self.ln_post(x)


class CLIPReplica(nn.Module):
    """OpenAI's CLIP module tree at a tiny width, text tower included."""

    def __init__(self, text_width=32, vocab=50, context=8):
        super().__init__()
        self.visual = VisionTower()
        self.transformer = Transformer(text_width, 1, 2)
        self.token_embedding = nn.Embedding(vocab, text_width)
        self.positional_embedding = nn.Parameter(
            torch.zeros(context, text_width))
        self.ln_final = nn.LayerNorm(text_width)
        self.text_projection = nn.Parameter(torch.zeros(text_width, PROJ))
        self.logit_scale = nn.Parameter(torch.zeros(()))
        # the TorchScript files also hold these as tensors
        self.register_buffer('input_resolution', torch.tensor(CLIP_IMG))
        self.register_buffer('context_length', torch.tensor(context))
        self.register_buffer('vocab_size', torch.tensor(vocab))

    def forward(self, img):
        return self.visual(img)


def clip_replica(seed=6):
    model = randomize_(CLIPReplica(), seed).eval()
    with torch.no_grad():  # the released weights are fp16
        for p in model.parameters():
            p.copy_(p.half().float())
    return model


def test_openai_clip_state_dict(tool):
    clip = clip_replica()
    out = tool.convert(clip.state_dict())
    assert out.layout == 'openai-clip'
    lines = tool.describe_dropped(out.dropped)
    assert lines[0].startswith("dropped CLIP's text tower: 18 keys (")
    assert 'transformer.resblocks.{0-0}.*' in lines[0]
    assert lines[1].startswith(
        "dropped CLIP's image-text projection head (not part of the image "
        'encoder): 1 key (visual.proj)')
    assert lines[2] == ("dropped CLIP's TorchScript metadata: 3 keys "
                        '(context_length, input_resolution, vocab_size)')
    assert len(lines) == 3
    model = cvpt(clip=True)
    model.load_state_dict(out.state)
    img = image(CLIP_IMG)
    with torch.no_grad():
        assert max_diff(model(img)[0], clip.visual(img)) < 1e-4


def test_openai_clip_torchscript_cli(tmp_path):
    """The released ViT-B-16.pt is a TorchScript archive of fp16 weights:
    the command line reads it (plain torch.load would refuse it)."""
    clip = clip_replica()
    img = image(CLIP_IMG)
    # (the trace shares the module's parameters: trace a copy)
    scripted = torch.jit.trace(copy.deepcopy(clip), img).half()
    torch.jit.save(scripted, str(tmp_path / 'ViT-B-16.pt'))
    with pytest.raises(Exception):
        torch.load(tmp_path / 'ViT-B-16.pt', weights_only=True)
    proc = subprocess.run([
        sys.executable, TOOL,
        str(tmp_path / 'ViT-B-16.pt'),
        str(tmp_path / 'clip.pth')
    ],
                          cwd=REPO,
                          capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    assert 'TorchScript archive, read with torch.jit.load' in proc.stdout
    assert 'openai-clip layout, 2 layers' in proc.stdout
    assert "dropped CLIP's text tower" in proc.stdout
    assert 'visual.proj' in proc.stdout
    assert ("pre_norm=True, norm_cfg=dict(type='LN', eps=1e-5), "
            "layer_cfgs=dict(act_cfg=dict(type='mmpretrain.QuickGELU'))"
            in proc.stdout)
    model = cvpt(clip=True)
    state = torch.load(tmp_path / 'clip.pth', weights_only=True)['state_dict']
    assert all(v.dtype == torch.float32 for v in state.values())
    model.load_state_dict(state)
    with torch.no_grad():
        assert max_diff(model(img)[0], clip.visual(img)) < 1e-4


# ---- inputs that must fail in one line ----
def test_unknown_layout_names_keys(tool, tmp_path):
    torch.save({'encoder.stem.weight': torch.zeros(2)}, tmp_path / 'x.pth')
    with pytest.raises(SystemExit) as e:
        tool.main([str(tmp_path / 'x.pth'), str(tmp_path / 'y.pth')])
    msg = str(e.value)
    assert '\n' not in msg
    assert 'unknown checkpoint layout' in msg
    assert 'official DINOv2' in msg and 'OpenAI CLIP' in msg
    assert "'encoder.stem.weight'" in msg
    assert not (tmp_path / 'y.pth').exists()


def test_text_tower_only_clip(tool, tmp_path):
    text = {
        k: v
        for k, v in clip_replica().state_dict().items()
        if not k.startswith('visual.')
    }
    torch.save(text, tmp_path / 'text.pth')
    with pytest.raises(SystemExit, match=r'text tower only .* no image '
                       r'tower') as e:
        tool.main([str(tmp_path / 'text.pth'), str(tmp_path / 'y.pth')])
    assert '\n' not in str(e.value)
    # CLIP RN50 and co.: a ResNet image tower
    text['visual.layer1.0.conv1.weight'] = torch.zeros(1)
    torch.save(text, tmp_path / 'RN50.pt')
    with pytest.raises(SystemExit, match=r"RN50\.pt: OpenAI CLIP whose image "
                       r"tower is not a ViT \(keys like "
                       r"'visual\.layer1\.0\.conv1\.weight'"):
        tool.main([str(tmp_path / 'RN50.pt'), str(tmp_path / 'y.pth')])
    assert not (tmp_path / 'y.pth').exists()


def test_dinov2_weights_in_clip_config(tool, tmp_path):
    """Another architecture's weights stop at load with one line."""
    from mmcvpt.utils.io import atomic_torch_save
    state = tool.convert(official_dinov2()).state
    atomic_torch_save(dict(state_dict=state), str(tmp_path / 'dinov2.pth'))
    model = cvpt(
        clip=True,
        init_cfg=dict(type='StrictPretrained', checkpoint=str(tmp_path /
                                                        'dinov2.pth')))
    with pytest.raises(CheckpointError) as e:
        model.init_weights()
    msg = str(e.value)
    assert '\n' not in msg
    assert msg.startswith('patch_embed.projection.weight: checkpoint shape '
                          f'({C}, 3, {P}, {P}) but the model has '
                          f'({C}, 3, {CLIP_P}, {CLIP_P})')
