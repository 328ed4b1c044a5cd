"""Configs on frozen foundation ViTs (DINOv2 with registers, CLIP) and the
IN-21k ViT-B/16 on Cityscapes and Pascal Context: each builds (on the meta
device: no memory, shapes checked through a forward), is composed as its
header says, has a VPT-deep twin that differs in the backbone type alone, and
the DINOv2 recipe with registers trains and evaluates through tools/train.py.
"""
import copy
import functools

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS

import mmcvpt  # noqa: F401
from tests.seg_fixtures import (REPO, TINY_OVERRIDES, load_tool, make_sample,
                                run_tool)

# CVPT config -> what it must be made of. embed/layers/patch/registers: the
# backbone; total: images per iteration over all GPUs.
ADE20K = dict(
    data='ADE20KDataset', crop=(512, 512), classes=150, total=16, iters=160000)
CITYSCAPES = dict(
    data='CityscapesDataset',
    crop=(512, 1024),
    classes=19,
    total=8,
    iters=80000)
PASCAL_CONTEXT_59 = dict(
    data='PascalContextDataset59',
    crop=(480, 480),
    classes=59,
    total=16,
    iters=80000)
VIT_B16 = dict(embed=768, layers=12, patch=16, registers=0)
DINOV2_S14 = dict(embed=384, layers=12, patch=14, registers=4)
DINOV2_B14 = dict(embed=768, layers=12, patch=14, registers=4)
DINOV2_L14 = dict(embed=1024, layers=24, patch=14, registers=4)
DINOV2_G14 = dict(embed=1536, layers=40, patch=14, registers=4)
CVPT_CONFIGS = {
    'configs/dinov2/cvpt_vit-s14-dinov2_ade20k.py':
    dict(ADE20K, **DINOV2_S14, ckpt='pretrain/vit-s14_dinov2-reg4.pth'),
    'configs/dinov2/cvpt_vit-b14-dinov2_ade20k.py':
    dict(ADE20K, **DINOV2_B14, ckpt='pretrain/vit-b14_dinov2-reg4.pth'),
    'configs/dinov2/cvpt_vit-l14-dinov2_ade20k.py':
    dict(ADE20K, **DINOV2_L14, ckpt='pretrain/vit-l14_dinov2-reg4.pth'),
    'configs/dinov2/cvpt_vit-g14-dinov2_ade20k.py':
    dict(ADE20K, **DINOV2_G14, ckpt='pretrain/vit-g14_dinov2-reg4.pth'),
    'configs/dinov2/cvpt_vit-l14-dinov2_cityscapes.py':
    dict(CITYSCAPES, **DINOV2_L14, ckpt='pretrain/vit-l14_dinov2-reg4.pth'),
    'configs/clip/cvpt_vit-b16-clip_ade20k.py':
    dict(ADE20K, **VIT_B16, ckpt='pretrain/vit-b16_clip-openai.pth'),
    'configs/cityscapes/cvpt_vitb_cityscapes.py':
    dict(CITYSCAPES, **VIT_B16, ckpt='pretrain/vit-b16_in21k.pth'),
    'configs/pascal_context/cvpt_vitb_pascal-context-59.py':
    dict(PASCAL_CONTEXT_59, **VIT_B16, ckpt='pretrain/vit-b16_in21k.pth'),
}
TWINS = {path: path.replace('/cvpt_', '/vpt_') for path in CVPT_CONFIGS}
# CVPTViT arguments VPTViT does not have, and what the DINOv2 and CLIP
# configs set (README "Evidence on real weights and real images").
CVPT_ONLY = ('prompt_position', 'cross_attn_weights', 'train_cross_attn',
             'cross_attn_impl', 'cross_attn_value_bias', 'cross_attn_gate')
FOUNDATION_DIRS = ('configs/dinov2/', 'configs/clip/')
FROZEN_START = dict(cross_attn_value_bias=False)
FOUNDATION_CONFIGS = sorted([*CVPT_CONFIGS, *TWINS.values()])
EXPECTED = {**CVPT_CONFIGS, **{v: CVPT_CONFIGS[k] for k, v in TWINS.items()}}
HEADLINE = 'configs/cvpt_vitb_ade20k.py'


@functools.lru_cache(maxsize=None)
def _load(path):
    # mmseg:: bases make every Config.fromfile take a second or two here
    return Config.fromfile(REPO / path)


def load(path):
    """A fresh copy of the config at ``path`` (relative to the repo)."""
    return copy.deepcopy(_load(path))


def build(model_cfg, scope='mmseg'):
    with MODELS.switch_scope_and_registry(scope) as models:
        return models.build(model_cfg)


def test_every_config_listed():
    found = {
        str(p.relative_to(REPO))
        for folder in ('dinov2', 'clip', 'cityscapes', 'pascal_context')
        for p in (REPO / 'configs' / folder).glob('*.py')
    }
    assert found == set(FOUNDATION_CONFIGS)


@pytest.mark.parametrize('path', FOUNDATION_CONFIGS)
def test_builds_and_shapes_fit(path):
    """The full model, built on the meta device (no memory, no time), runs
    a forward at the crop size: every neck/head width fits the backbone."""
    want = EXPECTED[path]
    cfg = load(path)
    assert cfg.custom_imports.imports == ['mmcvpt']
    cfg.model.backbone.init_cfg = None
    with torch.device('meta'):
        model = build(cfg.model, cfg.default_scope)
    backbone = model.backbone
    assert type(backbone).__name__ == ('VPTViT'
                                       if '/vpt_' in path else 'CVPTViT')
    assert (backbone.embed_dims, backbone.num_layers) == (want['embed'],
                                                          want['layers'])
    assert backbone.patch_embed.projection.kernel_size == (want['patch'], ) * 2
    assert backbone.num_register_tokens == want['registers']
    assert backbone.prompts.shape == (want['layers'], 200, want['embed'])
    # Only the prompts train in the backbone (registers and LayerScale too
    # stay frozen); neck and heads train.
    assert [n for n, p in backbone.named_parameters()
            if p.requires_grad] == ['prompts']
    assert all(
        p.requires_grad
        for m in (model.neck, model.decode_head, model.auxiliary_head)
        for p in m.parameters())
    # the neck keeps the backbone's width
    assert model.neck.in_channels == [want['embed']] * 4
    assert model.neck.out_channels == want['embed']
    h, w = want['crop']
    model.eval()
    with torch.no_grad():
        logits = model(torch.empty(1, 3, h, w, device='meta'), mode='tensor')
    # UPerHead predicts at the finest neck level: 4x the (padded) token grid
    grid = [-(-s // want['patch']) for s in (h, w)]
    assert logits.shape == (1, want['classes'], 4 * grid[0], 4 * grid[1])


@pytest.mark.parametrize('path', sorted(CVPT_CONFIGS))
def test_composition(path):
    want = CVPT_CONFIGS[path]
    cfg = load(path)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert cfg[loader].dataset.type == want['data'], loader
    crop = want['crop']
    assert cfg.model.data_preprocessor.size == crop
    assert tuple(cfg.model.backbone.img_size) == crop
    random_crop, = [
        t for t in cfg.train_dataloader.dataset.pipeline
        if t.type == 'RandomCrop'
    ]
    assert random_crop.crop_size == crop
    assert cfg.model.decode_head.num_classes == want['classes']
    assert cfg.model.auxiliary_head.num_classes == want['classes']
    assert cfg.total_batch_size == want['total']
    assert cfg.train_cfg.max_iters == want['iters']
    poly, = cfg.param_scheduler
    assert (poly.type, poly.end, poly.eta_min) == ('PolyLR', want['iters'], 0)
    assert cfg.model.backbone.num_prompts == 200
    # fp32, AMP opt-in (--amp); the headline's SGD recipe
    headline = load(HEADLINE).optim_wrapper
    assert cfg.optim_wrapper.type == 'OptimWrapper'
    assert 'loss_scale' not in cfg.optim_wrapper
    assert cfg.optim_wrapper.optimizer == headline.optimizer == dict(
        type='SGD', lr=1e-3, momentum=0.9, weight_decay=0.0)
    assert cfg.optim_wrapper.paramwise_cfg == headline.paramwise_cfg
    # the header tells how to make the pretrained file the config loads
    ckpt = cfg.model.backbone.init_cfg.checkpoint
    assert ckpt == want['ckpt']
    header = (REPO / path).read_text()
    assert 'python tools/model_converters/vit2mmcvpt.py' in header
    assert ckpt in header
    assert ('mode', 'slide') in cfg.model.test_cfg.items() or \
        want['data'] == 'ADE20KDataset'


@pytest.mark.parametrize('cvpt', sorted(TWINS))
def test_vpt_twin_differs_in_backbone_type_and_cvpt_options(cvpt):
    """Everything but the backbone type and the CVPT-only options (the
    frozen start the real-transfer benchmark chose for DINOv2 and CLIP)."""
    c, v = (load(p).to_dict() for p in (cvpt, TWINS[cvpt]))
    cb, vb = c['model']['backbone'], v['model']['backbone']
    assert (cb.pop('type'), vb.pop('type')) == ('CVPTViT', 'VPTViT')
    want = FROZEN_START if cvpt.startswith(FOUNDATION_DIRS) else {}
    assert {k: cb.pop(k) for k in CVPT_ONLY if k in cb} == want
    assert c == v


def test_l14_cityscapes_model_is_the_ade20k_one():
    """The DINOv2-L/14 model is written twice (the ADE20K and the
    Cityscapes recipe each come with their own base); keep them equal."""
    ade, city = (
        load('configs/dinov2/' + name).model
        for name in ('cvpt_vit-l14-dinov2_ade20k.py',
                     'cvpt_vit-l14-dinov2_cityscapes.py'))
    for part, differs in (('backbone', 'img_size'), ('neck', None),
                          ('decode_head', 'num_classes'), ('auxiliary_head',
                                                           'num_classes')):
        a, c = ade[part].to_dict(), city[part].to_dict()
        a.pop(differs, None), c.pop(differs, None)
        assert a == c, part
    assert ade.backbone.out_indices == (5, 11, 17, 23)


def test_dinov2_g_swiglu():
    backbone = load(
        'configs/dinov2/cvpt_vit-g14-dinov2_ade20k.py').model.backbone
    assert (backbone.arch,
            backbone.layer_cfgs) == ('dinov2-g', dict(ffn_type='swiglu_fused'))
    assert backbone.out_indices == (9, 19, 29, 39)


def test_clip_backbone_and_pixels():
    cfg = load('configs/clip/cvpt_vit-b16-clip_ade20k.py')
    backbone = cfg.model.backbone
    assert backbone.pre_norm is True
    assert backbone.norm_cfg == dict(type='LN', eps=1e-5)
    assert backbone.layer_cfgs.act_cfg.type == 'mmpretrain.QuickGELU'
    # OpenAI's normalisation in 0-255 units
    mean = [0.48145466, 0.4578275, 0.40821073]
    std = [0.26862954, 0.26130258, 0.27577711]
    assert cfg.model.data_preprocessor.mean == pytest.approx(
        [255 * m for m in mean])
    assert cfg.model.data_preprocessor.std == pytest.approx(
        [255 * s for s in std])


def test_dinov2_518_checkpoint_resized_to_the_crop(tmp_path):
    """A DINOv2 file (37x37 position embedding of 518x518, 4 registers) loads
    into the Cityscapes config's backbone (512x1024 -> 37x74 patches): the
    position embedding is interpolated on load. Narrow width, real depth."""
    cfg = load('configs/dinov2/cvpt_vit-l14-dinov2_cityscapes.py')
    narrow = dict(
        embed_dims=32, num_layers=24, num_heads=2, feedforward_channels=64)
    args = dict(cfg.model.backbone, arch=narrow, num_prompts=3)
    source = build(dict(args, img_size=518, init_cfg=None, num_prompts=0))
    state = {k: v for k, v in source.state_dict().items()}
    torch.save(state, tmp_path / 'dinov2.pth')
    model = build(
        dict(
            args,
            init_cfg=dict(
                type='StrictPretrained', checkpoint=str(tmp_path / 'dinov2.pth'))))
    prompts = model.prompts.detach().clone()
    model.init_weights()
    assert state['pos_embed'].shape == (1, 1 + 37 * 37, 32)
    assert model.pos_embed.shape == (1, 1 + 37 * 74, 32)
    torch.testing.assert_close(model.pos_embed[:, 0], state['pos_embed'][:, 0])
    torch.testing.assert_close(model.register_tokens, state['register_tokens'])
    torch.testing.assert_close(model.layers[23].attn.gamma1.weight,
                               state['layers.23.attn.gamma1.weight'])
    torch.testing.assert_close(model.prompts, prompts)  # not in the file


def test_trainable_parameters_counted_by_hand():
    """count_params.py's numbers for the DINOv2-B/14 ADE20K config, against
    a count by hand (3x3 convs with BN have no bias)."""
    count_params = load_tool('tools/analysis_tools/count_params.py')
    cfg = load('configs/dinov2/cvpt_vit-b14-dinov2_ade20k.py')
    report, flops, shape = count_params.count(cfg, flops=False)
    C, L, m, classes = 768, 12, 200, 150
    prompts = L * m * C
    layer = (
        2 * C  # ln1
        + C * 3 * C + 3 * C + C * C + C  # qkv, proj
        + C  # LayerScale gamma1
        + 2 * C  # ln2
        + C * 4 * C + 4 * C + 4 * C * C + C  # ffn
        + C)  # LayerScale gamma2
    backbone = (
        3 * 14 * 14 * C + C  # patch embedding
        + C + (1 + 37 * 37) * C + 4 * C  # cls, position, registers
        + L * layer + 2 * C + prompts)  # layers, final norm
    neck = 4 * (C * C + C) + 4 * (C * C * 9 + C)  # 1x1 lateral, 3x3
    bn = 2 * 512
    decode = (
        4 * (C * 512 + bn)  # pyramid pooling branches
        + (C + 4 * 512) * 512 * 9 + bn  # its bottleneck
        + 3 * (C * 512 + bn) + 3 * (512 * 512 * 9 + bn)  # FPN
        + 4 * 512 * 512 * 9 + bn  # FPN bottleneck
        + 512 * classes + classes)  # classifier
    auxiliary = C * 256 * 9 + 2 * 256 + 256 * classes + classes
    assert report['modules'] == dict(
        backbone=(prompts, backbone),
        neck=(neck, neck),
        decode_head=(decode, decode),
        auxiliary_head=(auxiliary, auxiliary))
    assert report['trainable'] == prompts + neck + decode + auxiliary == \
        59_583_788
    assert shape == (512, 512) and flops is None


def test_train_and_val_dinov2_with_registers(tmp_path):
    """tools/train.py on the embedded ADE20K sample: the DINOv2-B/14 recipe
    at a tiny width (C=64, 4 layers) with its 14-pixel patches (64x64 crops
    padded to 70: 5x5 patches), LayerScale and 4 registers."""
    sample = make_sample(tmp_path / 'samples')
    adapter = tmp_path / 'dinov2_cpu.py'
    adapter.write_text(
        "_base_ = ['" + str(REPO / 'configs/dinov2/cvpt_vit-b14-dinov2_'
                            'ade20k.py') + "']\n"
        "model = dict(backbone=dict(init_cfg=None))\n"
        "train_dataloader = dict(batch_size=2, num_workers=0,\n"
        "                        persistent_workers=False)\n"
        "val_dataloader = dict(num_workers=0, persistent_workers=False)\n"
        "test_dataloader = val_dataloader\n"
        "optim_wrapper = dict(optimizer=dict(lr=0.01))\n"
        "param_scheduler = []\n"
        "train_cfg = dict(max_iters=2, val_interval=2)\n"
        "default_hooks = dict(checkpoint=dict(interval=2))\n")
    tiny = tmp_path / 'dinov2_tiny.py'
    tiny.write_text(f"_base_ = ['{adapter}']\n"
                    f"data_root = '{sample}'\n" + TINY_OVERRIDES)
    work = tmp_path / 'work'
    proc = run_tool('tools/train.py', str(tiny), '--work-dir', str(work))
    log = proc.stdout + proc.stderr
    assert 'mIoU' in log
    state = torch.load(work / 'iter_2.pth', weights_only=True)['state_dict']
    assert state['backbone.register_tokens'].shape == (1, 4, 64)
    assert state['backbone.patch_embed.projection.weight'].shape == \
        (64, 3, 14, 14)
    assert state['backbone.layers.3.ffn.gamma2.weight'].shape == (64, )
    assert state['backbone.prompts'].shape == (4, 4, 64)
    peft = torch.load(work / 'iter_2_peft.pth', weights_only=True)
    assert all(torch.is_tensor(v) for v in peft['state_dict'].values())
    meta = peft['meta']['peft']['backbone.']
    assert (meta['patch_size'], meta['num_register_tokens']) == (14, 4)
