"""vit2mmcvpt on Hugging Face transformers layouts: ViTModel, Dinov2Model
(MLP and SwiGLU), Dinov2WithRegistersModel, CLIPVisionModel / CLIPModel, and
an ONNX export of such a model.

Each test builds a tiny random transformers model, saves it as the Hub does
(``model.safetensors`` or ``pytorch_model.bin``), converts it, loads the
result strictly into CVPTViT(num_prompts=0) and compares the tokens with
transformers' own forward.
"""
import numpy as np
import onnx
import pytest
import torch
import transformers
from safetensors.torch import load_file
from onnx import TensorProto, helper, numpy_helper

from mmcvpt.models import CVPTViT
from tests.test_tools import test_vit2mmcvpt_foundation as foundation
from tests.seg_fixtures import load_tool

TOOL = 'tools/model_converters/vit2mmcvpt.py'
C, HEADS, L, FF, R = 48, 4, 2, 96, 4
QUICK_GELU = dict(act_cfg=dict(type='mmpretrain.QuickGELU'))


@pytest.fixture(scope='module')
def tool():
    return load_tool(TOOL)


def randomize_(model, seed=0):
    """Every tensor drawn (LayerNorms and LayerScales around 1)."""
    return foundation.randomize_(model, seed, scales=('lambda1', )).eval()


def image(size, seed=7):
    return torch.randn(2, 3, size, size,
                       generator=torch.Generator().manual_seed(seed))


def vit_config(**kw):
    return dict(hidden_size=C, num_hidden_layers=L, num_attention_heads=HEADS,
                intermediate_size=FF, **kw)


def hf_dinov2(name, seed, **kw):
    """transformers' {name}Model ('Dinov2', 'Dinov2WithRegisters'), 3x3
    patches of 14 px, random weights."""
    cfg = getattr(transformers, name + 'Config')(
        image_size=42, patch_size=14, mlp_ratio=2, hidden_size=C,
        num_hidden_layers=L, num_attention_heads=HEADS, **kw)
    return randomize_(getattr(transformers, name + 'Model')(cfg), seed)


def hf_vit(seed, cls='ViTModel', **kw):
    cfg = transformers.ViTConfig(image_size=32, patch_size=16,
                                 layer_norm_eps=1e-6, **vit_config(**kw))
    return randomize_(getattr(transformers, cls)(cfg), seed)


def cvpt(img, patch, ff=FF, **kwargs):
    model = CVPTViT(
        arch=dict(embed_dims=C, num_layers=L, num_heads=HEADS,
                  feedforward_channels=ff),
        img_size=img, patch_size=patch, num_prompts=0, out_type='raw',
        **kwargs)
    model.eval()
    return model


def save(model, tmp_path, fmt):
    """The Hub's files: ``model.safetensors`` as save_pretrained writes it
    (transformers 5 writes the Hub's key names, not its in-memory ones), or
    the older ``pytorch_model.bin``, a torch.save of the same state dict."""
    model.save_pretrained(tmp_path / 'hub')
    path = tmp_path / 'hub' / 'model.safetensors'
    if fmt == 'bin':
        torch.save(load_file(path), tmp_path / 'hub' / 'pytorch_model.bin')
        path.unlink()
        path = tmp_path / 'hub' / 'pytorch_model.bin'
    return path


def convert_file(tool, path):
    return tool.convert(tool.load_source(str(path)))


@torch.no_grad()
def max_diff(a, b):
    return (a - b).abs().max().item()


@pytest.mark.parametrize('fmt', ['st', 'bin'])
def test_hf_vit(tool, tmp_path, fmt):
    """ViTModel (google/vit-base-patch16-224-in21k's class), both formats."""
    ref = hf_vit(seed=1)
    out = convert_file(tool, save(ref, tmp_path, fmt))
    assert out.layout == 'hf-vit'
    assert [k for k in out.dropped if not k.startswith('pooler.')] == []
    model = cvpt(32, 16)
    model.load_state_dict(out.state)  # strict: every key maps
    img = image(32)
    want = ref(pixel_values=img).last_hidden_state
    assert max_diff(model(img)[0], want) < 1e-4


def test_hf_vit_for_classification_prefix(tool, tmp_path):
    ref = hf_vit(seed=2, cls='ViTForImageClassification', num_labels=3)
    out = convert_file(tool, save(ref, tmp_path, 'st'))
    assert out.layout == 'hf-vit'
    assert "task prefix 'vit.' removed" in out.notes
    assert sorted(out.dropped) == ['classifier.bias', 'classifier.weight']
    model = cvpt(32, 16)
    model.load_state_dict(out.state)
    img = image(32)
    want = ref.vit(pixel_values=img).last_hidden_state
    assert max_diff(model(img)[0], want) < 1e-4


def test_hf_vit_swapped_qk_fails(tool, tmp_path):
    """The comparison can fail: q and k stacked in the wrong order."""
    ref = hf_vit(seed=1)
    state = convert_file(tool, save(ref, tmp_path, 'st')).state
    for i in range(L):
        w = state[f'layers.{i}.attn.qkv.weight']
        state[f'layers.{i}.attn.qkv.weight'] = torch.cat(
            [w[C:2 * C], w[:C], w[2 * C:]])
    model = cvpt(32, 16)
    model.load_state_dict(state)
    img = image(32)
    want = ref(pixel_values=img).last_hidden_state
    assert max_diff(model(img)[0], want) > 1e-2


@pytest.mark.parametrize('swiglu', [False, True], ids=['mlp', 'swiglu'])
def test_hf_dinov2(tool, tmp_path, swiglu):
    ref = hf_dinov2('Dinov2', seed=3, use_swiglu_ffn=swiglu)
    out = convert_file(tool, save(ref, tmp_path, 'st'))
    assert out.layout == 'hf-dinov2'
    assert out.dropped == ['embeddings.mask_token']
    lines = tool.describe_dropped(out.dropped)
    assert lines == ['dropped the mask token (used only by masked-image '
                     'pretraining): 1 key (embeddings.mask_token)']
    extra = dict(layer_scale_init_value=1e-5)
    ff = 2 * C
    if swiglu:
        extra['layer_cfgs'] = dict(ffn_type='swiglu_fused')
        hidden = out.state['layers.0.ffn.w3.weight'].shape[1]
        ff = hidden * 3 // 2
        assert tool.backbone_settings(out.state, out.layout).count('swiglu')
    model = cvpt(42, 14, ff=ff, **extra)
    model.load_state_dict(out.state)
    img = image(42)
    want = ref(pixel_values=img).last_hidden_state
    assert max_diff(model(img)[0], want) < 1e-4


def test_hf_dinov2_with_registers(tool, tmp_path):
    ref = hf_dinov2('Dinov2WithRegisters', seed=4, num_register_tokens=R)
    out = convert_file(tool, save(ref, tmp_path, 'bin'))
    assert out.layout == 'hf-dinov2-registers'
    assert out.state['register_tokens'].shape == (1, R, C)
    model = cvpt(42, 14, ff=2 * C, layer_scale_init_value=1e-5,
                 num_register_tokens=R)
    model.load_state_dict(out.state)
    img = image(42)
    tokens = ref(pixel_values=img).last_hidden_state  # cls, registers, patches
    want = torch.cat([tokens[:, :1], tokens[:, 1 + R:]], 1)
    assert max_diff(model(img)[0], want) < 1e-4


@pytest.mark.parametrize('whole', [False, True], ids=['vision', 'clip'])
def test_hf_clip(tool, tmp_path, whole):
    vision = transformers.CLIPVisionConfig(image_size=32, patch_size=16,
                                           projection_dim=24, **vit_config())
    if whole:  # CLIPModel: text tower and projections are dropped
        text = transformers.CLIPTextConfig(
            hidden_size=32, intermediate_size=64, num_hidden_layers=1,
            num_attention_heads=2, vocab_size=50, projection_dim=24)
        ref = transformers.CLIPModel(transformers.CLIPConfig(
            text_config=text.to_dict(), vision_config=vision.to_dict(),
            projection_dim=24))
    else:
        ref = transformers.CLIPVisionModel(vision)
    ref = randomize_(ref, seed=5)
    out = convert_file(tool, save(ref, tmp_path, 'st'))
    assert out.layout == 'hf-clip'
    lines = ' '.join(tool.describe_dropped(out.dropped))
    if whole:
        assert "dropped CLIP's text tower" in lines
        assert "image-text projection head" in lines
    model = cvpt(32, 16, pre_norm=True, norm_cfg=dict(type='LN', eps=1e-5),
                 layer_cfgs=QUICK_GELU)
    model.load_state_dict(out.state)
    img = image(32)
    tower = ref.vision_model if whole else ref
    # transformers' last_hidden_state is before post_layernorm (it norms
    # only the pooled class token); CVPTViT's final norm covers all tokens.
    want = tower(pixel_values=img).last_hidden_state
    want = ref.get_submodule(next(
        n for n, _ in ref.named_modules() if n.endswith('post_layernorm')))(
            want)
    assert max_diff(model(img)[0], want) < 1e-4


def test_hf_qkv_incomplete(tool):
    state = {
        'embeddings.patch_embeddings.projection.weight': torch.zeros(C, 3, 2,
                                                                     2),
        'encoder.layer.0.attention.attention.query.weight': torch.zeros(C, C),
        'encoder.layer.0.attention.attention.key.weight': torch.zeros(C, C),
    }
    with pytest.raises(tool.ConversionError,
                       match=r"encoder\.layer\.0\.attention\.attention: "
                       r"weight of \['k', 'q'\] only"):
        tool.convert(state)


# ---- ONNX: the layout torch.onnx writes for a transformers DINOv2 ----
def onnx_graph(state, C, path):
    """A graph in torch.onnx's style: linear weights as unnamed (in, out)
    MatMul inputs, each followed by an Add of the named bias; the position
    embedding as an unnamed (1, 1, C) class part and (1, n*n, C) grid."""
    inits, nodes, k = [], [], 0
    for name, value in state.items():
        if name.endswith('.weight') and value.dim() == 2 and \
                'embeddings' not in name:
            k += 1
            w = f'onnx::MatMul_{k}'
            inits.append(numpy_helper.from_array(value.t().numpy(), w))
            nodes.append(helper.make_node('MatMul', ['x', w], [f'm{k}']))
            nodes.append(helper.make_node(
                'Add', [name[:-len('weight')] + 'bias', f'm{k}'], [f'a{k}']))
        elif name.endswith('embeddings.position_embeddings'):
            inits.append(numpy_helper.from_array(value[:, :1].numpy(),
                                                 'onnx::Concat_900'))
            inits.append(numpy_helper.from_array(value[:, 1:].numpy(),
                                                 'onnx::Reshape_901'))
        else:
            inits.append(numpy_helper.from_array(value.numpy(), name))
    graph = helper.make_graph(
        nodes, 'g', [helper.make_tensor_value_info('x', TensorProto.FLOAT,
                                                   [1, C])],
        [helper.make_tensor_value_info(f'a{k}', TensorProto.FLOAT, [1, C])],
        initializer=inits)
    onnx.save(helper.make_model(graph), str(path))


def test_onnx_export_layout(tool, tmp_path):
    ref = hf_dinov2('Dinov2', seed=6)
    hf = {f'backbone.{k}': v
          for k, v in load_file(save(ref, tmp_path, 'st')).items()
          if k != 'embeddings.mask_token'}
    hf['decoder.bn.running_mean'] = torch.ones(2)
    onnx_graph(hf, C, tmp_path / 'model.onnx')
    read = tool.load_source(str(tmp_path / 'model.onnx'))
    assert read.keys() == hf.keys()
    assert all(torch.equal(read[k], hf[k]) for k in hf)
    out = tool.convert(read)
    assert out.layout == 'hf-dinov2'
    assert out.dropped == ['decoder.bn.running_mean']
    model = cvpt(42, 14, ff=2 * C, layer_scale_init_value=1e-5)
    model.load_state_dict(out.state)
    img = image(42)
    want = ref(pixel_values=img).last_hidden_state
    assert max_diff(model(img)[0], want) < 1e-4


def test_onnx_unnamed_weight_is_one_line(tool, tmp_path):
    w = numpy_helper.from_array(np.ones((2, 2), np.float32), 'onnx::MatMul_1')
    graph = helper.make_graph(
        [helper.make_node('MatMul', ['x', 'onnx::MatMul_1'], ['y'])], 'g',
        [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, 2])],
        initializer=[w])
    onnx.save(helper.make_model(graph), str(tmp_path / 'bad.onnx'))
    with pytest.raises(SystemExit) as e:
        tool.main([str(tmp_path / 'bad.onnx'), str(tmp_path / 'out.pth')])
    assert str(e.value) == (
        f'vit2mmcvpt: {tmp_path}/bad.onnx: MatMul weight '
        'onnx::MatMul_1 is not followed by one named bias; cannot name it')
    assert not (tmp_path / 'out.pth').exists()
