import socket

import pytest
import torch

import mmcvpt  # noqa: F401  (checkpoint allow-list for torch.load below)

from tests.seg_fixtures import logged_losses, make_sample, run_tool, \
    tiny_config


@pytest.fixture(scope='module')
def sample(tmp_path_factory):
    return make_sample(tmp_path_factory.mktemp('samples'))


@pytest.fixture(scope='module')
def trained(sample, tmp_path_factory):
    """2 iterations + validation + checkpoint of the tiny config."""
    work = tmp_path_factory.mktemp('train')
    cfg = tiny_config(work / 'tiny.py', sample)
    proc = run_tool('tools/train.py', str(cfg), '--work-dir', str(work))
    return cfg, work, proc.stdout + proc.stderr


def test_train_validates_and_checkpoints(trained):
    cfg, work, log = trained
    assert (work / 'iter_2.pth').is_file()
    assert 'mIoU' in log and 'no CUDA on this machine' in log
    assert 'trainable' in log  # TrainableParamReportHook
    ckpt = torch.load(work / 'iter_2.pth', weights_only=True)
    assert 'rng_state' in ckpt and 'backbone.prompts' in ckpt['state_dict']


def test_test_tool_writes_metrics_overlays_and_predictions(trained, tmp_path):
    cfg, work, _ = trained
    proc = run_tool('tools/test.py', str(cfg), str(work / 'iter_2.pth'),
                    '--work-dir', str(tmp_path), '--show-dir',
                    str(tmp_path / 'show'), '--out', str(tmp_path / 'out'))
    assert 'mIoU' in proc.stdout + proc.stderr
    overlays = list((tmp_path / 'show').rglob('*.png'))
    assert len(overlays) == 8  # every validation image
    assert len(list((tmp_path / 'out').glob('*.png'))) == 8


def test_resume_matches_uninterrupted(sample, tmp_path):
    extra = ("randomness = dict(seed=0, deterministic=True)\n"
             "default_hooks = dict(logger=dict(interval=1), "
             "checkpoint=dict(interval=2, "
             "max_keep_ckpts=3))\n")
    full = run_tool('tools/train.py',
                    str(tiny_config(tmp_path / 'a.py', sample, 4, extra)),
                    '--work-dir', str(tmp_path / 'full'))
    part_cfg = tiny_config(tmp_path / 'b.py', sample, 2, extra)
    run_tool('tools/train.py', str(part_cfg), '--work-dir',
             str(tmp_path / 'part'))
    # Same run extended to 4 iterations, resumed from its iteration-2 file.
    resumed = run_tool('tools/train.py',
                       str(tiny_config(tmp_path / 'b.py', sample, 4, extra)),
                       '--work-dir', str(tmp_path / 'part'), '--resume')
    a = logged_losses(full.stdout + full.stderr)
    b = logged_losses(resumed.stdout + resumed.stderr)
    assert sorted(b) == [3, 4]
    assert (b[3], b[4]) == (a[3], a[4])


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_dist_train_two_cpu_processes(sample, tmp_path):
    cfg = tiny_config(tmp_path / 'tiny.py', sample)
    proc = run_tool(
        'tools/dist_train.sh',
        str(cfg),
        '2',
        '--work-dir',
        str(tmp_path / 'work'),
        env=dict(PORT=str(_free_port())),
        timeout=120)
    out = proc.stdout + proc.stderr
    assert 'distributed backend nccl -> gloo' in out
    assert 'SyncBN -> BN' in out
    assert 'mIoU' in out and (tmp_path / 'work/iter_2.pth').is_file()


def test_mmseg_inference_apis(trained, sample):
    from mmseg.apis import MMSegInferencer, inference_model, init_model
    cfg, work, _ = trained
    ckpt = str(work / 'iter_2.pth')
    img = str(sample / 'images/validation/ADE_val_00000002.jpg')  # 256x320
    model = init_model(str(cfg), ckpt, device='cpu')
    result = inference_model(model, img)
    assert result.pred_sem_seg.data.shape == (1, 320, 256)
    assert model.dataset_meta['classes'][0] == 'wall'
    inferencer = MMSegInferencer(model=str(cfg), weights=ckpt, device='cpu')
    out = inferencer(img, return_datasamples=True)
    assert torch.equal(out.pred_sem_seg.data, result.pred_sem_seg.data)
