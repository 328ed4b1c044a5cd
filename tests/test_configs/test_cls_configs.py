
import pytest
from mmengine.config import Config
from mmengine.registry import DATASETS, MODELS

import mmcvpt  # noqa: F401
from tests.sample_fixtures import make_samples
from tests.seg_fixtures import REPO, load_tool

# CVPT_METHOD.md, typed here independently of tools/vtab/gen_configs.py:
# task: (lr, prompts, weight decay, total batch over all GPUs)
PAPER = {
    'cifar': (1e-3, 10, 0.05, 32),
    'caltech101': (1e-3, 200, 0.05, 32),
    'dtd': (1e-3, 10, 0.05, 64),
    'oxford_flowers102': (2e-3, 5, 0.05, 16),
    'oxford_iiit_pet': (1e-3, 5, 1e-5, 64),
    'svhn': (1e-2, 5, 0.05, 32),
    'sun397': (2e-3, 10, 0.05, 16),
    'patch_camelyon': (1e-2, 1, 1e-5, 16),
    'eurosat': (5e-3, 5, 0.05, 32),
    'resisc45': (5e-3, 10, 0.05, 16),
    'diabetic_retinopathy': (5e-3, 5, 1e-5, 32),
    'clevr_count': (1e-3, 20, 0.05, 16),
    'clevr_dist': (1e-3, 50, 1e-5, 64),
    'dmlab': (2e-3, 200, 0.05, 16),
    'kitti': (5e-3, 20, 0.05, 16),
    'dsprites_loc': (5e-3, 20, 1e-5, 32),
    'dsprites_ori': (5e-3, 5, 1e-5, 16),
    'smallnorb_azi': (5e-3, 50, 0.05, 32),
    'smallnorb_ele': (1e-3, 50, 0.05, 32),
    'CUB_200_2011': (5e-4, 5, 0.05, 32),
    'NABirds': (2e-4, 200, 1e-5, 16),
    'OxfordFlowers': (1e-3, 5, 0.05, 16),
    'StanfordDogs': (2e-4, 10, 1e-5, 16),
    'StanfordCars': (2e-3, 100, 0.05, 16),
}
CONFIGS = sorted(
    str(p.relative_to(REPO)) for bench in ('vtab1k', 'fgvc')
    for p in (REPO / 'configs' / bench).glob('*.py'))
SAMPLE_TASK = {'vtab1k': 'cifar', 'fgvc': 'CUB_200_2011'}


@pytest.fixture(scope='module')
def samples(tmp_path_factory):
    root = tmp_path_factory.mktemp('s')
    return {
        name: make_samples.make(name, str(root))
        for name in ('vtab1k', 'fgvc')
    }


def test_one_config_per_task_and_method():
    assert len(CONFIGS) == 3 * len(PAPER)


@pytest.mark.parametrize('path', CONFIGS)
def test_config_values_and_build(path, samples):
    cfg = Config.fromfile(REPO / path)
    method, rest = path.split('/')[-1][:-3].split('_vitb_')
    bench, task = rest.split('-', 1)
    lr, m, wd, batch = PAPER[task]
    assert cfg.optim_wrapper.optimizer.lr == lr
    assert cfg.optim_wrapper.optimizer.weight_decay == wd
    assert cfg.optim_wrapper.optimizer.type == 'AdamW'
    assert cfg.total_batch_size == batch
    # split by the train loop on any process count; the lr's batch
    assert cfg.train_dataloader.batch_size == 'auto'
    assert cfg.train_cfg.type == 'TotalBatchEpochBasedTrainLoop'
    assert cfg.auto_scale_lr == dict(base_batch_size=batch)
    backbone = cfg.model.backbone
    assert backbone.num_prompts == (0 if method == 'linear' else m)
    assert backbone.type == ('VPTViT' if method == 'vpt' else 'CVPTViT')
    assert backbone.drop_path_rate == 0.1 and backbone.prompt_dropout == 0.1
    warmup, cosine = cfg.param_scheduler
    assert warmup.start_factor * lr == pytest.approx(1e-6)
    assert (warmup.end, cosine.T_max, cosine.eta_min) == (10, 90, 1e-5)
    assert cfg.train_cfg.max_epochs == 100
    # test split evaluated once, at the end (no best-on-test selection)
    assert cfg.train_cfg.val_interval == 100
    assert 'save_best' not in cfg.default_hooks.checkpoint
    assert cfg.val_dataloader.dataset.split == 'test'

    cfg.model.backbone.init_cfg = None
    with MODELS.switch_scope_and_registry('mmpretrain') as reg:
        model = reg.build(cfg.model)
    assert model.head.fc.out_features == cfg.model.head.num_classes
    for key in ('train_dataloader', 'val_dataloader'):
        dataset = dict(cfg[key].dataset)
        name_key = 'task' if bench == 'vtab1k' else 'dataset'
        dataset[name_key] = SAMPLE_TASK[bench]
        dataset['data_root'] = samples[bench] if bench == 'vtab1k' else \
            f'{samples[bench]}/CUB_200_2011'
        if bench == 'vtab1k':
            dataset['num_classes'] = 4
        with DATASETS.switch_scope_and_registry('mmpretrain') as reg:
            assert len(reg.build(dataset)) > 0


def test_generated_files_are_in_sync():
    gen = load_tool('tools/vtab/gen_configs.py')
    for path, text in gen.generated().items():
        assert (REPO / path).read_text() == text, f'{path}: re-run ' \
            'tools/vtab/gen_configs.py'


def test_demo_config_builds(samples):
    cfg = Config.fromfile(REPO / 'configs/demo/cvpt_vitb_vtab1k-sample.py')
    with MODELS.switch_scope_and_registry('mmpretrain') as reg:
        model = reg.build(cfg.model)
    assert model.backbone.num_prompts == 5  # eurosat's
    assert cfg.total_batch_size == 8
    assert cfg.train_dataloader.batch_size == 'auto'
    dataset = dict(cfg.train_dataloader.dataset, data_root=samples['vtab1k'])
    with DATASETS.switch_scope_and_registry('mmpretrain') as reg:
        assert len(reg.build(dataset)) == 24


def test_every_config_is_tested():
    from tests.test_configs.test_dinov3_configs import \
        CONFIGS as DINOV3_CONFIGS
    from tests.test_configs.test_foundation_configs import FOUNDATION_CONFIGS
    from tests.test_configs.test_mask2former_configs import \
        CONFIGS as MASK2FORMER_CONFIGS
    from tests.test_configs.test_seg_configs import SEG_CONFIGS
    every = {
        str(p.relative_to(REPO))
        for p in (REPO / 'configs').rglob('*.py') if '_base_' not in p.parts
    }
    tested = set(SEG_CONFIGS) | set(FOUNDATION_CONFIGS) | set(CONFIGS) | \
        set(MASK2FORMER_CONFIGS) | set(DINOV3_CONFIGS) | {
        'configs/demo/cvpt_vitb_vtab1k-sample.py',
        # trained end to end by tests/test_tools/test_mask2former_tools.py
        'configs/demo/cvpt_vitb_mask2former_ade20k-sample.py',
        # = configs/cvpt_vitb_ade20k.py (test_package_configs.py)
        'configs/cvpt/cvpt_vit-b16_upernet_8xb2-160k_ade20k-512x512.py'}
    assert every == tested
