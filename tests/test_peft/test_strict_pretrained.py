"""init_cfg StrictPretrained: the pretrained file must fit the backbone exactly.

mmengine's ``PretrainedInit`` loads non-strictly and only logs missing and
unexpected keys: a DINOv2 file in a CLIP config would give a frozen backbone
with random pre-norm weights and without its layer scale. The files here
are tiny versions of what tools/model_converters/vit2mmcvpt.py writes
(mmpretrain VisionTransformer keys, ``{'state_dict': ..., 'meta': ...}``).
"""
import copy
import zlib

import pytest
import torch
from mmengine.model import BaseModule
from mmengine.runner import load_checkpoint
from mmpretrain.models import VisionTransformer

from mmcvpt.models import CVPTViT, VPTViT
from mmcvpt.peft import CheckpointError

ARCH = dict(embed_dims=48, num_layers=3, num_heads=4, feedforward_channels=96)
DINOV2 = dict(layer_scale_init_value=1e-5)
CLIP = dict(pre_norm=True, norm_cfg=dict(type='LN', eps=1e-5),
            layer_cfgs=dict(act_cfg=dict(type='mmpretrain.QuickGELU')))
FIT = '; or use the checkpoint that matches the config'


def _file(tmp_path, name, arch=ARCH, registers=0, **kwargs):
    """A converted-layout file of random weights; -> (path, state)."""
    vit = VisionTransformer(arch=arch, img_size=518, patch_size=14,
                            **copy.deepcopy(kwargs))
    state = vit.state_dict()
    if registers:
        state['register_tokens'] = torch.zeros(1, registers, 48)
    for key, value in state.items():  # seeded by name, never the init
        g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
        value.copy_(torch.randn(value.shape, generator=g))
    path = tmp_path / f'{name}.pth'
    torch.save(dict(state_dict=state, meta=dict(layout='test')), path)
    return str(path), state


def _model(path, cls=CVPTViT, prefix=None, **kwargs):
    init_cfg = dict(type='StrictPretrained', checkpoint=path)
    if prefix:
        init_cfg['prefix'] = prefix
    kwargs = dict(dict(img_size=28), **copy.deepcopy(kwargs))
    return cls(arch=ARCH, patch_size=14, num_prompts=2, out_type='featmap',
               init_cfg=init_cfg, **kwargs)


class _Segmentor(BaseModule):
    """The path a detector takes: its init_weights calls the backbone's."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        self.head = torch.nn.Linear(48, 3)


def _error(model) -> str:
    with pytest.raises(CheckpointError) as err:
        _Segmentor(model).init_weights()
    message = str(err.value)
    assert '\n' not in message
    return message


def test_dinov2_file_in_clip_config(tmp_path):
    path, _ = _file(tmp_path, 'dinov2', **DINOV2)
    assert _error(_model(path, **CLIP)) == (
        f"pretrained backbone '{path}' does not fit the config: the file has "
        'layer-scale tensors (layers.0.attn.gamma1.weight, '
        'layers.0.ffn.gamma2.weight, ...) but the config has '
        'layer_scale_init_value=0: set layer_scale_init_value=1e-5 (DINOv2); '
        'the config has pre_norm=True (CLIP) but the file has no pre_norm.*: '
        'set pre_norm=False' + FIT)


def test_clip_file_in_dinov2_config(tmp_path):
    path, _ = _file(tmp_path, 'clip', **CLIP)
    assert _error(_model(path, cls=VPTViT, **DINOV2)) == (
        f"pretrained backbone '{path}' does not fit the config: the config "
        'has layer scale (layer_scale_init_value > 0, DINOv2) but the file '
        'has no layer-scale tensors (layers.0.attn.gamma1.weight, '
        'layers.0.ffn.gamma2.weight, ...): set layer_scale_init_value=0; the '
        'file has pre_norm.* (CLIP) but the config has pre_norm=False: set '
        'pre_norm=True' + FIT)


def test_registers_keep_their_message(tmp_path):
    path, _ = _file(tmp_path, 'dinov2_reg4', registers=4, **DINOV2)
    assert _error(_model(path, **CLIP)) == (
        'register_tokens: the checkpoint has register tokens of shape '
        '(1, 4, 48) but the model has num_register_tokens=0; set '
        'num_register_tokens=4')


@pytest.mark.parametrize('extra, cause', [
    ('head.weight', 'the file has head tensors (head.weight), which a '
     'backbone file does not: convert the original weights with '
     'tools/model_converters/vit2mmcvpt.py (it drops heads)'),
    ('mask_token', 'the file has mask_token, which the model does not have'),
])
def test_unknown_key(tmp_path, extra, cause):
    path, state = _file(tmp_path, 'clip', **CLIP)
    state[extra] = torch.zeros(3, 48)
    torch.save({'state_dict': state}, path)
    assert _error(_model(path, **CLIP)) == \
        f"pretrained backbone '{path}' does not fit the config: {cause}{FIT}"


def test_depth_prefix_and_missing_tensors(tmp_path):
    arch2 = dict(ARCH, num_layers=2)
    path, _ = _file(tmp_path, 'two_layers', arch=arch2, **DINOV2)
    assert _error(_model(path, **DINOV2)) == (
        f"pretrained backbone '{path}' does not fit the config: the file has "
        '2 layers but the config has 3 (arch num_layers)' + FIT)
    # A whole segmentor checkpoint given without prefix='backbone'.
    _, state = _file(tmp_path, 'dinov2', **DINOV2)
    full = tmp_path / 'iter_10.pth'
    torch.save({'state_dict': {'backbone.' + k: v
                               for k, v in state.items()}}, full)
    assert _error(_model(str(full), **DINOV2)) == (
        f"pretrained backbone '{full}' does not fit the config: the file's "
        "backbone keys are under 'backbone.' (backbone.cls_token, ...): set "
        "prefix='backbone' in init_cfg" + FIT)
    _model(str(full), prefix='backbone', **DINOV2).init_weights()
    # Tensors a converter would never drop: named, with their count.
    del state['cls_token'], state['layers.1.ln2.bias']
    torch.save({'state_dict': {'backbone.' + k: v
                               for k, v in state.items()}}, full)
    assert _error(_model(str(full), prefix='backbone', **DINOV2)).endswith(
        " (prefix 'backbone') does not fit the config: the file lacks "
        'cls_token, layers.1.ln2.bias' + FIT)


@pytest.mark.parametrize('name, kwargs', [
    ('dinov2', dict(DINOV2, num_register_tokens=4,
                    cross_attn_weights='copy')),
    ('dinov2', dict(DINOV2, num_register_tokens=4,
                    cross_attn_weights='random', prompt_position='in_ffn')),
    ('dinov2_swiglu', dict(DINOV2, num_register_tokens=4,
                           layer_cfgs=dict(ffn_type='swiglu_fused'))),
    ('clip', CLIP),
    # Parts of the file the config leaves out on purpose (SETR: no final
    # norm; no class token, which mmpretrain loads at the file's grid only).
    ('clip', dict(CLIP, final_norm=False, with_cls_token=False,
                  img_size=518)),
])
def test_matching_file_loads_every_tensor(tmp_path, name, kwargs):
    R = kwargs.get('num_register_tokens', 0)
    file_kwargs = {
        k: v
        for k, v in kwargs.items()
        if k in ('layer_scale_init_value', 'pre_norm', 'norm_cfg',
                 'layer_cfgs')
    }
    path, state = _file(tmp_path, name, registers=R, **file_kwargs)
    model = _model(path, **kwargs)
    _Segmentor(model).init_weights()
    own = model.state_dict()
    # everything but the prompts and the separate cross-attention weights
    loaded = [k for k in own if not k.startswith(('prompts', 'cross_attn'))]
    unused = set() if kwargs.get('final_norm', True) else \
        {'cls_token', 'ln1.weight', 'ln1.bias'}
    assert set(loaded) == set(state) - unused
    for key in loaded:
        if key != 'pos_embed':  # resized to the model's grid
            assert torch.equal(own[key], state[key]), key
    if kwargs.get('cross_attn_weights') == 'copy':
        assert torch.equal(model.cross_attn[2].qkv.weight,
                           state['layers.2.attn.qkv.weight'])
    with torch.no_grad():
        assert model(torch.randn(1, 3, 28, 42))[0].shape == (1, 48, 2, 3)


def test_full_checkpoints_keep_mmengines_non_strict_load(tmp_path):
    """load_from / init_model: a checkpoint of the whole model, loaded after
    the backbone was built; only the existing checks apply."""
    path, state = _file(tmp_path, 'dinov2', **DINOV2)
    model = _Segmentor(_model(path, **DINOV2))
    full = {'backbone.' + k: v for k, v in state.items()}
    del full['backbone.layers.0.attn.gamma1.weight']
    ckpt = tmp_path / 'old.pth'
    torch.save({'state_dict': full}, ckpt)
    load_checkpoint(model, str(ckpt))  # warns about the missing tensor
    assert torch.equal(model.backbone.layers[1].attn.gamma1.weight,
                       state['layers.1.attn.gamma1.weight'])
    # A model without registers in a registers config: the same message.
    regs = _Segmentor(_model(path, num_register_tokens=4, **DINOV2))
    with pytest.raises(CheckpointError,
                       match='^backbone.register_tokens: the model has '
                       'num_register_tokens=4 but the checkpoint has no '
                       'register tokens'):
        load_checkpoint(regs, str(ckpt))


def test_plain_pretrained_keeps_mmengines_lenient_load(tmp_path):
    """type='Pretrained' is mmengine's: a file without the layer scale
    loads with a warning, the rest of it loaded, the layer scale left at
    its initial value; 'StrictPretrained' refuses the same file."""
    path, state = _file(tmp_path, 'clip', **CLIP)
    del state['pre_norm.weight'], state['pre_norm.bias']
    torch.save({'state_dict': state}, path)
    strict = _model(path, **CLIP)
    assert 'set pre_norm=False' in _error(strict)
    lenient = _model(path, **CLIP)
    lenient.init_cfg['type'] = 'Pretrained'
    init = lenient.pre_norm.weight.clone()
    _Segmentor(lenient).init_weights()
    assert torch.equal(lenient.pre_norm.weight, init)
    assert torch.equal(lenient.layers[2].attn.qkv.weight,
                       state['layers.2.attn.qkv.weight'])
