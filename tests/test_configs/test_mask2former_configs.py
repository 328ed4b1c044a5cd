"""Mask2Former on frozen prompted ViTs (configs/mask2former/): every config
builds (on the meta device) with the parts its name says, each VPT-deep twin
differs in the backbone type alone, the Cityscapes DINOv2 recipe is the
ADE20K one, and a tiny-width variant trains with the recipe's parameter
groups, leaves the frozen ViT bit-identical and saves a PEFT file of the
prompts, neck and head. Without mmdet the configs stop with one line."""
import copy
import functools
import json
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import MODELS
from mmengine.structures import PixelData

import mmcvpt  # noqa: F401
from mmcvpt.peft import save_peft_checkpoint
from tests.seg_fixtures import REPO

FOLDER = 'configs/mask2former/'
CONFIGS = sorted(
    str(p.relative_to(REPO)) for p in (REPO / FOLDER).glob('*.py'))
CVPT = [p for p in CONFIGS if p.startswith(FOLDER + 'cvpt_')]
IN21K = FOLDER + 'cvpt_vit-b16_mask2former_8xb2-160k_ade20k-512x512.py'
DINOV2 = 'vit-l14-dinov2-reg4_mask2former_8xb2-40k_'
DINOV2_ADE20K = DINOV2 + 'ade20k-512x512.py'
DINOV2_CITYSCAPES = DINOV2 + 'cityscapes-512x1024.py'
# dataset in the name -> (classes, crop)
DATASETS = {
    'ade20k-512x512': (150, (512, 512)),
    'cityscapes-512x1024': (19, (512, 1024)),
}
SCHEDULES = {'-160k_': 160000, '-40k_': 40000}
NO_MMDET = ('mmcvpt: Mask2Former configs need mmdet>=3.0.0,<3.4.0 '
            '(Mask2FormerHead is built from mmdet modules) but it is not '
            'installed; fix: pip install mmdet==3.3.0')


@functools.lru_cache(maxsize=None)
def _load(path):
    return Config.fromfile(REPO / path)


def load(path):
    """A fresh copy of the config at ``path`` (relative to the repo)."""
    return copy.deepcopy(_load(path))


def build(model_cfg, scope='mmseg'):
    with MODELS.switch_scope_and_registry(scope) as models:
        return models.build(model_cfg)


def test_every_config_listed():
    names = [p[len(FOLDER):] for p in CONFIGS]
    stems = ('vit-b16_mask2former_8xb2-160k_ade20k-512x512.py',
             'vit-b16-clip_mask2former_8xb2-160k_ade20k-512x512.py',
             DINOV2_ADE20K, DINOV2_CITYSCAPES)
    assert names == sorted(m + s for m in ('cvpt_', 'vpt_') for s in stems)


@pytest.mark.parametrize('path', CONFIGS)
def test_builds_with_the_parts_of_its_name(path):
    cfg = load(path)
    name = path[len(FOLDER):]
    classes, crop = next(v for k, v in DATASETS.items() if k in name)
    iters = next(v for k, v in SCHEDULES.items() if k in name)
    assert cfg.custom_imports == dict(
        imports=['mmcvpt', 'mmcvpt.utils.require_mmdet', 'mmdet.models'],
        allow_failed_imports=False)
    cfg.model.backbone.init_cfg = None  # no pretrained file offline
    with torch.device('meta'):
        model = build(cfg.model, cfg.default_scope)
    backbone, neck, head = model.backbone, model.neck, model.decode_head
    cvpt = name.startswith('cvpt_')
    assert type(backbone).__name__ == ('CVPTViT' if cvpt else 'VPTViT')
    assert backbone.num_prompts == 200
    assert backbone.prompts.shape[1] == 200
    if cvpt:
        # frozen-start value path for DINOv2/CLIP, the biased one for IN-21k
        assert backbone.cross_attn_value_bias is (path == IN21K)
    assert tuple(cfg.model.backbone.img_size) == crop
    assert tuple(cfg.model.data_preprocessor.size) == crop
    assert [n for n, p in backbone.named_parameters()
            if p.requires_grad] == ['prompts']
    assert type(neck).__name__ == 'MultiLevelNeck'
    assert neck.in_channels == [backbone.embed_dims] * 4
    assert neck.out_channels == 256
    assert cfg.model.decode_head.in_channels == [256] * 4
    assert type(head).__name__ == 'Mask2FormerHead'
    assert head.num_classes == cfg.model.decode_head.num_classes == classes
    assert cfg.train_cfg.max_iters == iters
    poly, = cfg.param_scheduler
    assert (poly.type, poly.begin, poly.end, poly.by_epoch) == \
        ('PolyLR', 0, iters, False)


def _without_backbone_type(path):
    cfg = load(path).to_dict()
    return cfg, cfg['model']['backbone'].pop('type')


@pytest.mark.parametrize('cvpt', CVPT)
def test_vpt_twin_differs_in_backbone_type_only(cvpt):
    c, c_type = _without_backbone_type(cvpt)
    v, v_type = _without_backbone_type(cvpt.replace('/cvpt_', '/vpt_'))
    assert (c_type, v_type) == ('CVPTViT', 'VPTViT')
    value_bias = c['model']['backbone'].pop('cross_attn_value_bias', None)
    assert value_bias is (None if cvpt == IN21K else False)
    assert c == v


@pytest.mark.parametrize('method', ['cvpt_', 'vpt_'])
def test_cityscapes_dinov2_is_the_ade20k_recipe(method):
    ade = load(FOLDER + method + DINOV2_ADE20K).to_dict()
    city = load(FOLDER + method + DINOV2_CITYSCAPES).to_dict()
    for cfg, classes in ((ade, 150), (city, 19)):
        head = cfg['model']['decode_head']
        assert head.pop('num_classes') == classes
        # Mask2Former's per-class weights and the 0.1 of "no object"
        assert head['loss_cls'].pop('class_weight') == \
            [1.0] * classes + [0.1]
        assert cfg['model']['backbone'].pop('img_size') == \
            ((512, 512) if cfg is ade else (512, 1024))
    for part in ('backbone', 'neck', 'decode_head'):
        assert ade['model'][part] == city['model'][part], part
    for key in ('optim_wrapper', 'total_batch_size', 'train_cfg',
                'param_scheduler'):
        assert ade[key] == city[key], key


TINY_ARCH = dict(
    embed_dims=32, num_layers=4, num_heads=2, feedforward_channels=64)


def tiny_model(init_cfg=None):
    """The IN-21k CVPT recipe at a tiny width (ViT C=32, 4 layers, 4
    prompts, 64x64 inputs; head with 4 queries, one pixel-decoder and one
    transformer-decoder layer), on the CPU; and its config."""
    cfg = load(IN21K)
    model = cfg.model
    model.data_preprocessor.size = (64, 64)
    model.backbone.update(
        arch=TINY_ARCH,
        img_size=(64, 64),
        out_indices=(0, 1, 2, 3),
        num_prompts=4,
        init_cfg=init_cfg)
    model.neck.in_channels = [32] * 4
    head = model.decode_head
    head.num_queries = 4
    head.pixel_decoder.encoder.num_layers = 1
    head.transformer_decoder.num_layers = 1
    head.train_cfg.num_points = 256
    torch.manual_seed(0)
    return build(model, cfg.default_scope), cfg


def frozen_backbone_state(model):
    return {
        k: v.detach().clone()
        for k, v in model.backbone.state_dict().items() if k != 'prompts'
    }


def test_optimizer_groups_of_the_recipe():
    model, cfg = tiny_model()
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    assert type(wrapper).__name__ == 'OptimWrapper'
    assert wrapper.clip_grad_kwargs['max_norm'] == 0.01
    assert type(wrapper.optimizer).__name__ == 'AdamW'
    # name -> (lr, weight_decay) of the group(s) holding it
    names = {id(p): n for n, p in model.named_parameters()}
    groups = {}
    for group in wrapper.optimizer.param_groups:
        for p in group['params']:
            groups.setdefault(names[id(p)], set()).add(
                (group['lr'], group['weight_decay']))
    assert groups['backbone.prompts'] == {(1e-3, 0.0)}
    for name in ('query_embed', 'query_feat', 'level_embed'):
        assert groups[f'decode_head.{name}.weight'] == {(1e-4, 0.0)}, name
    assert groups['decode_head.pixel_decoder.mask_feature.weight'] == \
        {(1e-4, 0.05)}
    assert groups['decode_head.pixel_decoder.input_convs.0.conv.weight'] \
        == {(1e-4, 0.05)}
    frozen = [
        p for n, p in model.backbone.named_parameters() if n != 'prompts'
    ]
    assert len(frozen) == 54  # patch embedding, tokens, 4 layers, norm
    assert not any(p.requires_grad for p in frozen)
    # trainable: the prompts, every neck and head tensor; nothing else
    assert set(groups) == {
        n for n, p in model.named_parameters() if p.requires_grad
    } == {'backbone.prompts'} | {
        f'{m}.{n}' for m in ('neck', 'decode_head')
        for n, _ in getattr(model, m).named_parameters()
    }


def seg_batch():
    """Two 64x64 images with maps of classes 1-4, 0 and ignored rows."""
    from mmseg.structures import SegDataSample
    samples = []
    for i in range(2):
        seg = torch.zeros(1, 64, 64, dtype=torch.long)
        seg[:, :32] = 1 + i
        seg[:, :, :16] = 3 + i
        seg[:, 60:] = 255
        sample = SegDataSample(
            metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64)))
        sample.gt_sem_seg = PixelData(data=seg)
        samples.append(sample)
    gen = torch.Generator().manual_seed(1)
    images = [
        torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8, generator=gen)
        for _ in samples
    ]
    return dict(inputs=images, data_samples=samples)


def test_frozen_vit_bit_identical_after_steps():
    model, cfg = tiny_model()
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    frozen = frozen_backbone_state(model)
    prompts = model.backbone.prompts.detach().clone()
    query = model.decode_head.query_feat.weight.detach().clone()
    conv = model.decode_head.pixel_decoder.mask_feature.weight.detach(
    ).clone()
    model.train()
    for _ in range(2):
        losses = model.train_step(seg_batch(), wrapper)
        assert torch.isfinite(losses['loss'])
    assert set(losses) >= {
        'decode.loss_cls', 'decode.loss_mask', 'decode.loss_dice'
    }
    after = model.backbone.state_dict()
    assert set(after) - {'prompts'} == set(frozen)
    changed = [k for k, v in frozen.items() if not torch.equal(after[k], v)]
    assert changed == []
    assert not torch.equal(model.backbone.prompts, prompts)
    assert not torch.equal(model.decode_head.query_feat.weight, query)
    assert not torch.equal(
        model.decode_head.pixel_decoder.mask_feature.weight, conv)


def test_peft_file_holds_prompts_neck_and_head(tmp_path):
    source, _ = tiny_model()
    parts = source.backbone.PRETRAINED_PARTS
    pretrained = {
        k: v
        for k, v in source.backbone.state_dict().items()
        if k.split('.')[0] in parts
    }
    assert 'prompts' not in pretrained and len(pretrained) > 50
    torch.save(pretrained, tmp_path / 'vit.pth')
    model, _ = tiny_model(
        dict(type='StrictPretrained', checkpoint=str(tmp_path / 'vit.pth')))
    model.init_weights()  # the file fits the backbone
    torch.testing.assert_close(model.backbone.pos_embed,
                               source.backbone.pos_embed)
    save_peft_checkpoint(model, str(tmp_path / 'peft.pth'), dict(iter=2))
    ckpt = torch.load(tmp_path / 'peft.pth', weights_only=True)
    state = ckpt['state_dict']
    assert all(torch.is_tensor(v) for v in state.values())
    neck, head = model.neck.state_dict(), model.decode_head.state_dict()
    assert len(state) == len(neck) + len(head) + 1
    assert set(state) == {'backbone.prompts'} | {
        'neck.' + k
        for k in neck
    } | {'decode_head.' + k
         for k in head}
    assert not any(k.startswith('backbone.layers') for k in state)
    torch.testing.assert_close(state['backbone.prompts'],
                               model.backbone.prompts.detach())
    assert list(ckpt['meta']['peft']) == ['backbone.']
    assert ckpt['meta']['peft']['backbone.']['num_prompts'] == 4


# A fresh interpreter where mmdet cannot be imported: Config.fromfile of
# argv[1] (its ImportError's chain printed), then tools/train.py argv[1:].
NO_MMDET_CHILD = r'''
import json
import runpy
import sys

sys.modules['mmdet'] = None  # mmdet not installed

from mmengine.config import Config  # noqa: E402

try:
    Config.fromfile(sys.argv[1])
except ImportError as e:
    chain = []
    while e is not None:
        chain.append([type(e).__name__, str(e)])
        e = e.__context__
    print('RESULT ' + json.dumps(dict(chain=chain, mmdet=[
        m for m, mod in sys.modules.items()
        if m.split('.')[0] == 'mmdet' and mod is not None])), flush=True)
sys.argv = ['tools/train.py', *sys.argv[1:]]
runpy.run_path('tools/train.py', run_name='__main__')
'''


def test_without_mmdet_one_line(tmp_path):
    """Config.fromfile raises mmengine's ImportError with mmcvpt's line in
    its chain; tools/train.py turns it into that one line (exit 1) before
    any work dir is made."""
    work = tmp_path / 'work'
    proc = subprocess.run(
        [sys.executable, '-c', NO_MMDET_CHILD, IN21K, '--work-dir',
         str(work)],
        capture_output=True, text=True, cwd=REPO, timeout=300)
    out = json.loads(proc.stdout.split('RESULT ', 1)[1].splitlines()[0])
    outer, wrapped, cause = out['chain']
    assert outer[0] == 'ImportError'
    assert outer[1].startswith('Failed to import custom modules from ')
    assert wrapped == [
        'ImportError', 'Failed to import mmcvpt.utils.require_mmdet'
    ]
    assert cause == ['ImportError', NO_MMDET]
    assert out['mmdet'] == []
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1] == 'error: ' + NO_MMDET
    assert not work.exists()
