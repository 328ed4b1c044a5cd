import importlib
import shutil

import pytest
from mmengine.config import Config

import mmcvpt  # noqa: F401
from mmcvpt.launch import PreflightError, preflight
from tests.seg_fixtures import make_sample, run_tool, tiny_config

# The module, not the function of the same name mmcvpt.launch exports.
checks = importlib.import_module('mmcvpt.launch.preflight')


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
             "_delete_=True, type='StrictPretrained', checkpoint='pretrain/x.pth')))"
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


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])  # header intact, scan data cut


def test_corrupt_annotation_header(sample, tmp_path):
    root = tmp_path / 'copy'
    shutil.copytree(sample, root)
    seg = root / 'annotations/training/ADE_train_00000003.png'
    seg.write_bytes(b'\x89PNG\r\n\x1a\n' + bytes(16))  # no IHDR chunk
    with pytest.raises(
            PreflightError,
            match=r'^train_dataloader: corrupt annotation '
            r'.*ADE_train_00000003\.png: expected a PNG file with an IHDR '
            r'header$'):
        preflight(_cfg(tmp_path, root), ('train_dataloader', ))


def test_truncated_jpeg_needs_the_deep_check(sample, tmp_path):
    root = tmp_path / 'copy'
    shutil.copytree(sample, root)
    _truncate(root / 'images/training/ADE_train_00000007.jpg')
    cfg = _cfg(tmp_path, root)
    preflight(cfg, ('train_dataloader', ))  # headers are fine
    with pytest.raises(
            PreflightError,
            match=r'^train_dataloader: cannot decode '
            r'.*ADE_train_00000007\.jpg: OSError: image file is truncated'
            r'.*; replace or remove the file$'):
        preflight(cfg, ('train_dataloader', ), deep=True)


def test_truncated_annotation_found_by_the_deep_check(sample, tmp_path):
    root = tmp_path / 'copy'
    shutil.copytree(sample, root)
    _truncate(root / 'annotations/validation/ADE_val_00000004.png')
    with pytest.raises(
            PreflightError,
            match=r'^val_dataloader: cannot decode '
            r'.*ADE_val_00000004\.png: '):
        preflight(_cfg(tmp_path, root), ('val_dataloader', ), deep=True)


def test_progress_only_for_large_sets(sample, tmp_path, monkeypatch):
    logged = []
    monkeypatch.setattr(checks, 'print_log',
                        lambda msg, **_: logged.append(msg))
    cfg = _cfg(tmp_path, sample)
    checks.check_dataset(cfg, 'train_dataloader', deep=True)
    assert len(logged) == 1 and logged[0].startswith(
        'pre-flight train_dataloader: 16 samples, 32 files OK (decoded, ')
    monkeypatch.setattr(checks, 'PROGRESS_EVERY', 8)
    logged.clear()
    checks.check_dataset(cfg, 'train_dataloader', deep=True)
    progress = [msg.split(' (')[0] for msg in logged[:-1]]
    assert progress == [
        'pre-flight train_dataloader: checked 8/16',
        'pre-flight train_dataloader: checked 16/16',
        'pre-flight train_dataloader: decoded 8/32',
        'pre-flight train_dataloader: decoded 16/32',
        'pre-flight train_dataloader: decoded 24/32',
        'pre-flight train_dataloader: decoded 32/32'
    ]


@pytest.mark.parametrize('rank', [0, 1])
def test_only_rank_zero_checks(sample, tmp_path, monkeypatch, rank):
    import torch.distributed as dist
    calls, sent = [], []

    def fake_preflight(cfg, keys, deep=False):
        calls.append(keys)
        raise PreflightError('train_dataloader: image missing: x.jpg')

    def fake_broadcast(objects, src):
        assert src == 0
        sent.append(list(objects))
        objects[0] = 'train_dataloader: image missing: x.jpg'  # rank 0's

    monkeypatch.setattr(checks, 'preflight', fake_preflight)
    monkeypatch.setattr(dist, 'is_initialized', lambda: True)
    monkeypatch.setattr(dist, 'get_rank', lambda: rank)
    monkeypatch.setattr(dist, 'broadcast_object_list', fake_broadcast)
    with pytest.raises(
            SystemExit,
            match=r'^error: train_dataloader: image missing: x\.jpg$'):
        checks.preflight_once(_cfg(tmp_path, sample), ('train_dataloader', ))
    # Rank 0 reads the files and sends its outcome; the others only wait.
    assert calls == ([('train_dataloader', )] if rank == 0 else [])
    assert sent == [
        ['train_dataloader: image missing: x.jpg'] if rank == 0 else [None]
    ]


def test_tools_offer_skip_and_deep_check():
    for tool in ('tools/train.py', 'tools/test.py'):
        text = run_tool(tool, '--help').stdout
        assert '--skip-preflight' in text and '--check-images' in text


def test_skipped_preflight_trains_until_the_missing_file(sample, tmp_path):
    # A validation image without its annotation: pre-flight stops the run
    # before anything is written; skipped, the run trains, checkpoints and
    # meets the missing file only when validation loads it.
    root = tmp_path / 'copy'
    shutil.copytree(sample, root)
    missing = root / 'annotations/validation/ADE_val_00000005.png'
    missing.unlink()
    cfg = tiny_config(tmp_path / 'c.py', root)
    runs = {}
    for flags in ((), ('--skip-preflight', )):
        work = tmp_path / f'work{len(flags)}'
        proc = run_tool('tools/train.py', str(cfg), '--work-dir', str(work),
                        *flags, check=False)
        errors = [
            line for line in proc.stderr.splitlines()
            if line.startswith('error:')
        ]
        assert proc.returncode == 1 and len(errors) == 1, proc.stderr[-2000:]
        runs[flags] = (proc.stdout + proc.stderr, errors[0], work)
    log, error, work = runs[()]
    assert 'pre-flight train_dataloader: 16 samples' in log
    assert error.startswith('error: val_dataloader: annotation missing for '
                            f"image {root / 'images/validation'}")
    assert not work.exists()
    log, error, work = runs[('--skip-preflight', )]
    assert 'pre-flight' not in log
    assert 'Iter(train) [2/2]' in log and (work / 'iter_2.pth').is_file()
    assert 'Iter(val) [4/8]' in log and 'Iter(val) [5/8]' not in log
    assert error.startswith(f'error: cannot load {missing} '
                            '(FileNotFoundError: ')
    assert error.endswith(f"then resume from {work / 'iter_2.pth'} with "
                          '--resume')
