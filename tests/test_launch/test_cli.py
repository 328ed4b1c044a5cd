"""tools/train.py's mmpretrain-style flags, --tta, config typos and bad
argument values: what they do to the config, and one-line errors."""
from argparse import Namespace

import pytest
from mmengine.config import Config

from mmcvpt.launch import apply_train_flags, config_not_found, enable_tta
from tests.seg_fixtures import REPO, logged_losses, make_sample, run_tool, \
    tiny_config

FLAGS = dict(resume=None, auto_scale_lr=False, no_validate=False,
             no_pin_memory=False, no_persistent_workers=False)
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def _cfg(**extra):
    loaders = {
        k: dict(batch_size=2, pin_memory=True, persistent_workers=True)
        for k in LOADERS
    }
    return Config(dict(val_cfg=dict(type='ValLoop'),
                       val_evaluator=dict(type='IoUMetric'), **loaders,
                       **extra), filename=__file__)


def _apply(cfg, **flags):
    apply_train_flags(cfg, Namespace(**dict(FLAGS, **flags)))
    return cfg


def test_no_flags_change_nothing():
    assert _apply(_cfg()).to_dict() == _cfg().to_dict()


def test_resume_latest_or_given_checkpoint(tmp_path):
    cfg = _apply(_cfg(load_from='old.pth'), resume='auto')
    assert (cfg.resume, cfg.load_from) == (True, None)
    ckpt = tmp_path / 'iter_8.pth'
    ckpt.write_bytes(b'x')
    cfg = _apply(_cfg(), resume=str(ckpt))
    assert (cfg.resume, cfg.load_from) == (True, str(ckpt))
    with pytest.raises(SystemExit) as e:
        _apply(_cfg(), resume=str(tmp_path / 'iter_9.pth'))
    assert str(e.value) == (
        f"error: --resume: checkpoint '{tmp_path}/iter_9.pth' not found; "
        'give a file, or --resume alone for the latest checkpoint in the '
        'work_dir')


def test_auto_scale_lr():
    cfg = _apply(_cfg(total_batch_size=16), auto_scale_lr=True)
    assert cfg.auto_scale_lr == dict(enable=True)  # base: the total (batch.py)
    cfg = _apply(_cfg(auto_scale_lr=dict(base_batch_size=32)),
                 auto_scale_lr=True)
    assert cfg.auto_scale_lr == dict(enable=True, base_batch_size=32)
    with pytest.raises(SystemExit) as e:
        _apply(_cfg(), auto_scale_lr=True)
    assert str(e.value) == (
        'error: --auto-scale-lr needs auto_scale_lr.base_batch_size (the '
        f'total batch the lr was tuned for) or total_batch_size in '
        f'{__file__}')


def test_no_validate_and_dataloader_flags():
    cfg = _apply(_cfg(), no_validate=True)
    assert cfg.val_cfg is None and cfg.val_dataloader is None
    assert cfg.val_evaluator is None
    assert cfg.test_dataloader.pin_memory is True
    cfg = _apply(_cfg(), no_pin_memory=True, no_persistent_workers=True)
    for key in LOADERS:
        assert cfg[key].pin_memory is False
        assert cfg[key].persistent_workers is False
        assert cfg[key].batch_size == 2


def test_tta_needs_the_pipeline():
    cfg = Config(dict(model=dict(type='EncoderDecoder'),
                      test_dataloader=dict(dataset=dict(pipeline=[]))),
                 filename=__file__)
    with pytest.raises(SystemExit) as e:
        enable_tta(cfg)
    assert str(e.value) == (
        f"error: --tta needs tta_pipeline and tta_model in {__file__}; "
        "compose "
        "it from a dataset base that has them (e.g. "
        "'mmseg::_base_/datasets/ade20k.py') or define them")
    cfg.tta_pipeline = [dict(type='LoadImageFromFile')]
    cfg.tta_model = dict(type='SegTTAModel')
    enable_tta(cfg)
    assert cfg.model == dict(type='SegTTAModel',
                             module=dict(type='EncoderDecoder'))
    assert cfg.test_dataloader.dataset.pipeline == cfg.tta_pipeline


def test_config_typos(monkeypatch):
    monkeypatch.chdir(REPO)
    assert config_not_found('configs/cvpt_vitb_ade20K.py') == (
        "error: config 'configs/cvpt_vitb_ade20K.py' not found; did you mean "
        "'configs/cvpt_vitb_ade20k.py'?")
    # a folder typo: searched in configs/
    assert config_not_found('confgs/vtab1k/cvpt_vitb_vtab1k-eurosat.py') == (
        "error: config 'confgs/vtab1k/cvpt_vitb_vtab1k-eurosat.py' not found;"
        " did you mean 'configs/vtab1k/cvpt_vitb_vtab1k-eurosat.py'?")
    assert config_not_found('configs/zzz.py') == \
        "error: config 'configs/zzz.py' not found"


@pytest.fixture(scope='module')
def sample(tmp_path_factory):
    return make_sample(tmp_path_factory.mktemp('samples'))


def _one_error_line(*args):
    proc = run_tool('tools/train.py', *args, check=False)
    assert proc.returncode == 1
    # stdout: at most the device line, the first thing the tool logs
    logged = proc.stdout.splitlines()
    assert len(logged) <= 1 and all(' - mmengine - INFO - device: ' in line
                                    for line in logged), proc.stdout[-2000:]
    return proc.stderr.strip().splitlines()


def test_bad_values_and_typos_are_one_line(sample, tmp_path):
    cfg = str(tiny_config(tmp_path / 'c.py', sample))
    work = str(tmp_path / 'work')
    assert _one_error_line(
        cfg, '--work-dir', work, '--cfg-options',
        'model.backbone.prompt_position=after_atn') == [
            'error: cannot build CVPTViT from the config: prompt_position '
            "must be one of ('before_attn', "
            "'parallel', 'after_attn', 'in_ffn', 'after_ffn'), got "
            "'after_atn'"
        ]
    assert _one_error_line(cfg, '--work-dir', work, '--cfg-options',
                           'model.decode_head.chanels=8') == [
        'error: cannot build UPerHead from the config: '
        "BaseDecodeHead.__init__() got an unexpected keyword argument "
        "'chanels'"
    ]
    assert _one_error_line(str(tmp_path / 'C.py')) == [
        f"error: config '{tmp_path}/C.py' not found; did you mean "
        f"'{tmp_path}/c.py'?"
    ]
    proc = run_tool('tools/test.py', cfg, str(tmp_path / 'none.pth'),
                    '--tta', '--cfg-options', 'tta_pipeline=None',
                    check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f'error: --tta needs tta_pipeline in {cfg}; compose it from a '
        "dataset base that has them (e.g. 'mmseg::_base_/datasets/"
        "ade20k.py') or define them"
    ]
    assert not (tmp_path / 'work').exists()


def test_train_flags_end_to_end(sample, tmp_path):
    work = tmp_path / 'work'
    proc = run_tool('tools/train.py', str(tiny_config(tmp_path / 'a.py',
                                                      sample)),
                    '--work-dir', str(work), '--no-validate',
                    '--no-pin-memory', '--no-persistent-workers',
                    '--auto-scale-lr', '--cfg-options', 'total_batch_size=2')
    log = proc.stdout + proc.stderr
    assert 'Iter(val)' not in log and 'aAcc' not in log
    assert 'auto_scale_lr: lr x 1 (total batch 2 / base_batch_size 2)' in log
    dumped = Config.fromfile(work / 'a.py')
    assert dumped.val_dataloader is None
    assert dumped.train_dataloader.pin_memory is False
    assert dumped.train_dataloader.persistent_workers is False
    # --resume CKPT: continue that checkpoint in another work_dir
    proc = run_tool('tools/train.py', str(tiny_config(tmp_path / 'b.py',
                                                      sample, iters=3)),
                    '--work-dir', str(tmp_path / 'other'), '--resume',
                    str(work / 'iter_2.pth'))
    assert sorted(logged_losses(proc.stdout + proc.stderr)) == [3]
