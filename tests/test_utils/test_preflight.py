import shutil

import pytest
from mmengine.config import Config

import mmcvpt  # noqa: F401
from mmcvpt.utils import PreflightError, preflight
from tests.seg_fixtures import make_sample, run_tool, tiny_config


@pytest.fixture(scope='module')
def sample(tmp_path_factory):
    return make_sample(tmp_path_factory.mktemp('samples'))


def _cfg(tmp_path, root, extra=''):
    return Config.fromfile(tiny_config(tmp_path / 'c.py', root, extra=extra))


def test_good_sample_passes(sample, tmp_path):
    preflight(_cfg(tmp_path, sample), ('train_dataloader', 'val_dataloader'))


def test_missing_data_root(tmp_path):
    with pytest.raises(
            PreflightError,
            match=r"^train_dataloader: data_root "
            r"'.*/nope' does not exist; set "
            r'train_dataloader\.dataset\.data_root'):
        preflight(_cfg(tmp_path, tmp_path / 'nope'), ('train_dataloader', ))


def test_missing_annotation(sample, tmp_path):
    root = tmp_path / 'copy'
    shutil.copytree(sample, root)
    (root / 'annotations/validation/ADE_val_00000005.png').unlink()
    with pytest.raises(
            PreflightError,
            match=r'val_dataloader: annotation '
            r'missing for image .*ADE_val_00000005\.jpg: expected '
            r'.*annotations/validation/ADE_val_00000005\.png$'):
        preflight(_cfg(tmp_path, root), ('train_dataloader', 'val_dataloader'))


def test_corrupt_jpeg(sample, tmp_path):
    root = tmp_path / 'copy'
    shutil.copytree(sample, root)
    (root / 'images/training/ADE_train_00000007.jpg').write_bytes(b'oops')
    with pytest.raises(
            PreflightError,
            match=r'train_dataloader: corrupt '
            r'image .*ADE_train_00000007\.jpg: not a JPEG'):
        preflight(_cfg(tmp_path, root), ('train_dataloader', ))


def test_missing_pretrained_file(sample, tmp_path):
    extra = ("model.update(backbone=dict(model['backbone'], init_cfg=dict("
             "_delete_=True, type='Pretrained', checkpoint='pretrain/x.pth')))"
             '\n')
    with pytest.raises(
            PreflightError,
            match=r"pretrained backbone "
            r"'pretrain/x\.pth' not found; create it with "
            r'`python tools/model_converters/vit2mmcvpt\.py'):
        preflight(_cfg(tmp_path, sample, extra), ())


def test_unknown_backbone_argument(sample, tmp_path):
    cfg = _cfg(tmp_path, sample)
    cfg.merge_from_dict({'model.backbone.prompt_positon': 'parallel'})
    with pytest.raises(
            PreflightError,
            match=r"model\.backbone: CVPTViT has "
            r"no argument 'prompt_positon'; did you mean "
            r"'prompt_position'\?"):
        preflight(cfg, ())
    # Arguments inherited from mmpretrain's VisionTransformer are accepted.
    cfg.model.backbone.pop('prompt_positon')
    cfg.merge_from_dict({'model.backbone.interpolate_mode': 'bilinear'})
    preflight(cfg, ())


def test_train_tool_prints_one_line_and_writes_nothing(tmp_path):
    cfg = tiny_config(tmp_path / 'c.py', tmp_path / 'nope')
    proc = run_tool(
        'tools/train.py',
        str(cfg),
        '--work-dir',
        str(tmp_path / 'work'),
        check=False)
    assert proc.returncode == 1
    errors = [
        line for line in proc.stderr.splitlines() if line.startswith('error:')
    ]
    assert len(errors) == 1 and 'nope' in errors[0]
    assert 'Traceback' not in proc.stderr
    assert not (tmp_path / 'work').exists()
