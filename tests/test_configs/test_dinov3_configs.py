"""DINOv3 configs (configs/dinov3/): each builds on the meta device with the
backbone its name says (rotary positions, no pos_embed, 4 storage tokens,
patch 16, LayerScale, LN eps 1e-5), each CVPT config is its VPT-deep twin
plus the type and ``cross_attn_value_bias=False``, the B/16 and L/16 share
every backbone setting but width, and the Cityscapes and Mask2Former ones
keep their DINOv2 recipes."""
import copy
import functools

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS

import mmcvpt  # noqa: F401
from tests.seg_fixtures import REPO

FOLDER = 'configs/dinov3/'
CONFIGS = sorted(
    str(p.relative_to(REPO)) for p in (REPO / FOLDER).glob('*.py'))
STEMS = ('vit-b16-dinov3_upernet_8xb2-40k_ade20k-512x512.py',
         'vit-l16-dinov3_upernet_8xb2-40k_ade20k-512x512.py',
         'vit-l16-dinov3_upernet_8xb1-80k_cityscapes-512x1024.py',
         'vit-l16-dinov3_mask2former_8xb2-40k_ade20k-512x512.py')
# stem -> (arch, out_indices, classes, crop, iterations, decode head)
EXPECT = {
    STEMS[0]: ('dinov3-b', [2, 5, 8, 11], 150, (512, 512), 40000,
               'UPerHead'),
    STEMS[1]: ('dinov3-l', [5, 11, 17, 23], 150, (512, 512), 40000,
               'UPerHead'),
    STEMS[2]: ('dinov3-l', [5, 11, 17, 23], 19, (512, 1024), 80000,
               'UPerHead'),
    STEMS[3]: ('dinov3-l', [5, 11, 17, 23], 150, (512, 512), 40000,
               'Mask2FormerHead'),
}


@functools.lru_cache(maxsize=None)
def _load(path):
    return Config.fromfile(REPO / path)


def load(path):
    return copy.deepcopy(_load(path))


def test_every_config_listed():
    assert [p[len(FOLDER):] for p in CONFIGS] == sorted(
        m + s for m in ('cvpt_', 'vpt_') for s in STEMS)


@pytest.mark.parametrize('path', CONFIGS)
def test_builds_with_the_parts_of_its_name(path):
    cfg = load(path)
    name = path[len(FOLDER):]
    stem = name.split('_', 1)[1]
    arch, out_indices, classes, crop, iters, head = EXPECT[stem]
    assert cfg.train_cfg.max_iters == iters
    assert cfg.param_scheduler[0]['end'] == iters
    checkpoint = cfg.model.backbone.init_cfg.checkpoint
    assert checkpoint == f'pretrain/vit-{arch[-1]}16_dinov3.pth'
    cfg.model.backbone.init_cfg = None  # no pretrained file offline
    with MODELS.switch_scope_and_registry(cfg.default_scope) as models, \
            torch.device('meta'):
        model = models.build(cfg.model)
    backbone = model.backbone
    cvpt = name.startswith('cvpt_')
    assert type(backbone).__name__ == ('CVPTViT' if cvpt else 'VPTViT')
    assert backbone.out_indices == out_indices
    assert backbone.pos_embed is None and backbone.rope_cfg == dict(base=100.)
    assert backbone.patch_embed.projection.kernel_size == (16, 16)
    assert backbone.num_register_tokens == 4 and backbone.num_prompts == 200
    assert backbone.layers[0].attn.gamma1.weight.shape == \
        (backbone.embed_dims, )
    assert backbone.ln1.eps == 1e-5 and backbone.layers[0].ln1.eps == 1e-5
    assert backbone.embed_dims == (768 if arch == 'dinov3-b' else 1024)
    if cvpt:
        assert backbone.cross_attn_rope and not backbone.cross_attn_value_bias
    assert type(model.decode_head).__name__ == head
    assert model.decode_head.num_classes == classes
    assert tuple(cfg.model.data_preprocessor.size) == crop


@pytest.mark.parametrize('stem', STEMS)
def test_cvpt_is_its_twin_plus_type_and_value_bias(stem):
    cvpt, vpt = load(FOLDER + 'cvpt_' + stem), load(FOLDER + 'vpt_' + stem)
    backbone = cvpt.model.backbone
    assert backbone.pop('type') == 'CVPTViT'
    assert backbone.pop('cross_attn_value_bias') is False
    assert vpt.model.backbone.pop('type') == 'VPTViT'
    assert cvpt.to_dict() == vpt.to_dict()


def test_b16_and_l16_differ_in_width_only():
    b = load(FOLDER + 'cvpt_' + STEMS[0]).model
    large = load(FOLDER + 'cvpt_' + STEMS[1]).model
    for key in ('arch', 'out_indices', 'init_cfg'):
        b.backbone.pop(key), large.backbone.pop(key)
    assert b.backbone == large.backbone
    assert large.neck.in_channels == [1024] * 4


@pytest.mark.parametrize('stem,dinov2', [
    (STEMS[2], 'configs/dinov2/cvpt_vit-l14-dinov2_cityscapes.py'),
    (STEMS[3], 'configs/mask2former/cvpt_vit-l14-dinov2-reg4_mask2former_'
     '8xb2-40k_ade20k-512x512.py'),
])
def test_dinov2_recipes_kept(stem, dinov2):
    """Only the backbone's DINOv3 settings differ from the DINOv2 config."""
    ours, theirs = load(FOLDER + 'cvpt_' + stem), load(dinov2)
    for cfg in (ours, theirs):
        for key in ('patch_size', 'rope', 'norm_cfg', 'arch', 'init_cfg'):
            cfg.model.backbone.pop(key, None)
        cfg.pop('dinov3_b16', None), cfg.pop('dinov3_l16', None)
    assert ours.to_dict() == theirs.to_dict()
