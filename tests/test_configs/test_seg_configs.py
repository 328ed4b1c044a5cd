import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DATASETS, MODELS

import mmcvpt  # noqa: F401
from tests.seg_fixtures import REPO, make_sample

# UperNet and SETR; Mask2Former: test_mask2former_configs.py
SEG_CONFIGS = sorted(
    str(p.relative_to(REPO))
    for p in [*(REPO / 'configs').glob('*.py'),
              *(REPO / 'configs/demo').glob('*ade20k*.py')]
    if 'mask2former' not in p.name)


@pytest.fixture(scope='module')
def sample(tmp_path_factory):
    return make_sample(tmp_path_factory.mktemp('samples'))


def test_configs_found():
    assert SEG_CONFIGS == [
        'configs/cvpt_vitb_ade20k-80k.py', 'configs/cvpt_vitb_ade20k-p10.py',
        'configs/cvpt_vitb_ade20k.py',
        'configs/cvpt_vitl_setr-pup_ade20k-p10.py',
        'configs/cvpt_vitl_setr-pup_ade20k.py',
        'configs/demo/cvpt_vitb_ade20k-sample.py',
        'configs/vitb-frozen_ade20k.py', 'configs/vitb-full_ade20k.py',
        'configs/vpt_vitb_ade20k-p10.py', 'configs/vpt_vitb_ade20k.py',
        'configs/vpt_vitl_setr-pup_ade20k-p10.py',
        'configs/vpt_vitl_setr-pup_ade20k.py'
    ]


@pytest.mark.parametrize('path', SEG_CONFIGS)
def test_config_builds(path, sample):
    cfg = Config.fromfile(REPO / path)
    assert cfg.custom_imports == dict(
        imports=['mmcvpt'], allow_failed_imports=False)
    assert cfg.model.backbone.type in ('CVPTViT', 'VPTViT')
    cfg.model.backbone.init_cfg = None  # no pretrained file offline
    with MODELS.switch_scope_and_registry(cfg.default_scope) as models:
        model = models.build(cfg.model)
    trainable = {
        n.split('.')[0]
        for n, p in model.named_parameters() if p.requires_grad
    }
    if cfg.model.backbone.get('freeze_backbone', True):
        backbone = {
            n
            for n, p in model.backbone.named_parameters() if p.requires_grad
        }
        assert backbone == ({'prompts'}
                            if cfg.model.backbone.num_prompts else set())
    assert 'decode_head' in trainable
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = dict(cfg[key].dataset, data_root=str(sample))
        with DATASETS.switch_scope_and_registry(cfg.default_scope) as reg:
            assert len(reg.build(dataset)) > 0


def test_headline_values():
    cfg = Config.fromfile(REPO / 'configs/cvpt_vitb_ade20k.py')
    assert cfg.train_cfg.max_iters == 160000
    # 16 images per iteration in total, as the paper, on any GPU count
    assert cfg.total_batch_size == 16
    assert cfg.train_dataloader.batch_size == 'auto'
    assert cfg.train_cfg.type == 'TotalBatchIterBasedTrainLoop'
    assert cfg.model.decode_head.norm_cfg.type == 'SyncBN'
    assert cfg.env_cfg.dist_cfg.backend == 'nccl'
    assert cfg.optim_wrapper.type == 'OptimWrapper'  # AMP: --amp
    assert cfg.model.backbone.out_indices == (2, 5, 8, 11)
    paper = Config.fromfile(REPO / 'configs/cvpt_vitl_setr-pup_ade20k.py')
    assert paper.optim_wrapper.optimizer == dict(
        type='SGD', lr=0.001, momentum=0.9, weight_decay=0.0)
    assert paper.optim_wrapper.paramwise_cfg.custom_keys.head.lr_mult == 10
    assert paper.model.backbone.num_prompts == 200  # the paper's P=200
    assert (paper.total_batch_size, paper.train_dataloader.batch_size) == \
        (16, 'auto')
    for path in SEG_CONFIGS:  # every ADE20K config trains on 16 in total
        if 'demo' not in path:
            assert Config.fromfile(REPO / path).total_batch_size == 16, path


def _readme_optimiser_lines():
    """The optim_wrapper/param_scheduler lines of the README's stock-config
    snippet."""
    text = (REPO / 'README.md').read_text()
    snippet = text[text.index("_base_ = ['mmseg::vit/"):]
    snippet = snippet[:snippet.index('```')]
    start = snippet.index('optim_wrapper = ')
    return snippet[start:]


def test_stock_mmseg_config_with_cvpt_backbone(tmp_path):
    """A user's own config on top of a stock mmseg one: swap the backbone."""
    user = tmp_path / 'my_cvpt_upernet.py'
    README_OPTIMISER = _readme_optimiser_lines()
    user.write_text(f"""
_base_ = [
    'mmseg::vit/vit_vit-b16_mln_upernet_8xb2-160k_ade20k-512x512.py',
    '{REPO}/configs/_base_/mmcvpt_runtime.py',
]
model = dict(
    pretrained=None,
    backbone=dict(_delete_=True, type='CVPTViT', img_size=(128, 128),
                  arch=dict(embed_dims=768, num_layers=4, num_heads=12,
                            feedforward_channels=3072),
                  out_indices=(0, 1, 2, 3), out_type='featmap',
                  num_prompts=10))
{README_OPTIMISER}""")
    cfg = Config.fromfile(user)
    with MODELS.switch_scope_and_registry(cfg.default_scope) as models:
        model = models.build(cfg.model)
    # the README's optimiser lines replace mmseg's AdamW 6e-5 / wd 0.01
    from mmengine.optim import build_optim_wrapper
    optimizer = build_optim_wrapper(model, cfg.optim_wrapper).optimizer
    lrs = {(g['lr'], g['weight_decay'])
           for g in optimizer.param_groups
           if any(p is model.backbone.prompts for p in g['params'])}
    assert type(optimizer).__name__ == 'SGD' and lrs == {(1e-3, 0.0)}
    assert {g['lr'] for g in optimizer.param_groups
            if g['params'][0].requires_grad} == {1e-3, 1e-2}
    assert cfg.param_scheduler == [
        dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=160000,
             by_epoch=False)
    ]
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 128, 128), mode='tensor')
    assert out.shape == (1, 150, 32, 32)
    assert [
        n for n, p in model.backbone.named_parameters() if p.requires_grad
    ] == ['prompts']


# config -> (backbone type, prompts per layer): the paper's P=200 for the
# headline and the paper's setting, their VPT-deep twins at the same P, and
# 10-prompt variants of each
PROMPTS = {
    'configs/cvpt_vitb_ade20k.py': ('CVPTViT', 200),
    'configs/cvpt_vitb_ade20k-80k.py': ('CVPTViT', 200),
    'configs/cvpt_vitb_ade20k-p10.py': ('CVPTViT', 10),
    'configs/vpt_vitb_ade20k.py': ('VPTViT', 200),
    'configs/vpt_vitb_ade20k-p10.py': ('VPTViT', 10),
    'configs/vitb-frozen_ade20k.py': ('CVPTViT', 0),
    'configs/vitb-full_ade20k.py': ('CVPTViT', 0),
    'configs/demo/cvpt_vitb_ade20k-sample.py': ('CVPTViT', 200),
    'configs/cvpt_vitl_setr-pup_ade20k.py': ('CVPTViT', 200),
    'configs/cvpt_vitl_setr-pup_ade20k-p10.py': ('CVPTViT', 10),
    'configs/vpt_vitl_setr-pup_ade20k.py': ('VPTViT', 200),
    'configs/vpt_vitl_setr-pup_ade20k-p10.py': ('VPTViT', 10),
}


def test_prompt_counts():
    assert sorted(PROMPTS) == SEG_CONFIGS  # every ADE20K config listed
    for path, expected in PROMPTS.items():
        backbone = Config.fromfile(REPO / path).model.backbone
        assert (backbone.type, backbone.num_prompts) == expected, path


def _without_backbone_choice(cfg):
    cfg = cfg.to_dict()
    cfg['model']['backbone'].pop('type')
    cfg['model']['backbone'].pop('num_prompts')
    return cfg


@pytest.mark.parametrize('cvpt, variants', [
    ('configs/cvpt_vitl_setr-pup_ade20k.py', [
        'configs/vpt_vitl_setr-pup_ade20k.py',
        'configs/cvpt_vitl_setr-pup_ade20k-p10.py',
        'configs/vpt_vitl_setr-pup_ade20k-p10.py'
    ]),
    ('configs/cvpt_vitb_ade20k.py', [
        'configs/vpt_vitb_ade20k.py', 'configs/cvpt_vitb_ade20k-p10.py',
        'configs/vpt_vitb_ade20k-p10.py'
    ]),
])
def test_twins_differ_in_backbone_type_and_prompts_only(cvpt, variants):
    """VPT-deep twins and -p10 variants: same everything else (data,
    schedule, optimiser, heads, TTA, every other backbone argument)."""
    reference = _without_backbone_choice(Config.fromfile(REPO / cvpt))
    for path in variants:
        assert _without_backbone_choice(Config.fromfile(REPO / path)) == \
            reference, path


@pytest.mark.parametrize('path', SEG_CONFIGS)
def test_multi_scale_flip_tta(path):
    """tools/test.py --tta: mmseg's ADE20K pipeline, the paper's "MS"
    column: ratios 0.5-1.75, each without and with a horizontal flip."""
    cfg = Config.fromfile(REPO / path)
    assert cfg.tta_model.type == 'SegTTAModel'
    load, tta = cfg.tta_pipeline
    assert load.type == 'LoadImageFromFile' and tta.type == 'TestTimeAug'
    scales, flips, *rest = tta.transforms
    assert [(t.type, t.scale_factor, t.keep_ratio) for t in scales] == [
        ('Resize', r, True) for r in (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)
    ]
    flip = [('RandomFlip', p, 'horizontal') for p in (0.0, 1.0)]
    assert [(t.type, t.prob, t.direction) for t in flips] == flip
    assert [t.type for (t, ) in rest] == ['LoadAnnotations', 'PackSegInputs']
