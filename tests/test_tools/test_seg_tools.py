import os
import re
import shutil
import sys

import pytest
import torch

import mmcvpt  # noqa: F401  (checkpoint allow-list for torch.load below)

from tests.seg_fixtures import (REPO, dist_train, free_port, logged_losses,
                                make_sample, run_tool, tiny_config)


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


def _param_report_lines(log):
    """TrainableParamReportHook's summary line and per-module lines: the
    summary and what follows it up to the first other message."""
    messages = re.findall(r' - mmengine - INFO - (.*)', log)
    start = [
        i for i, msg in enumerate(messages)
        if re.fullmatch(r'trainable \S+M / \S+M \(\S+%\)', msg)
    ]
    assert len(start) == 1, start  # logged once, when training starts
    lines = messages[start[0]:start[0] + 1]
    for msg in messages[start[0] + 1:]:
        if not msg.startswith('  '):
            break
        lines.append(msg)
    return lines


def _expected_report(cfg):
    """The lines for the model the config builds, counted here."""
    from mmengine.config import Config
    from mmengine.registry import MODELS
    config = Config.fromfile(cfg)
    with MODELS.switch_scope_and_registry('mmseg') as registry:
        model = registry.build(config.model)
    counts = {}
    for name, param in model.named_parameters():
        t, n = counts.get(name.split('.')[0], (0, 0))
        counts[name.split('.')[0]] = (
            t + param.numel() * param.requires_grad, n + param.numel())
    trainable = sum(t for t, _ in counts.values())
    total = sum(n for _, n in counts.values())
    # prompts + heads: nothing else of the backbone trains
    assert counts['backbone'][0] == model.backbone.prompts.numel()
    assert trainable == counts['backbone'][0] + sum(
        n for k, (_, n) in counts.items() if k != 'backbone')
    lines = [f'trainable {trainable / 1e6:.2f}M / {total / 1e6:.2f}M '
             f'({100 * trainable / total:.2f}%)']
    lines += [f'  {k}: trainable {t / 1e6:.2f}M / {n / 1e6:.2f}M'
              for k, (t, n) in counts.items()]
    return lines


def test_train_validates_and_checkpoints(trained):
    cfg, work, log = trained
    assert (work / 'iter_2.pth').is_file()
    assert 'mIoU' in log and 'no CUDA on this machine' in log
    assert _param_report_lines(log) == _expected_report(cfg)
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



def test_dist_train_two_cpu_processes(sample, tmp_path):
    cfg = tiny_config(tmp_path / 'tiny.py', sample)
    proc = dist_train(cfg, tmp_path / 'work')
    out = proc.stdout + proc.stderr
    assert 'distributed backend nccl -> gloo' in out
    assert 'SyncBN -> BN' in out
    assert 'mIoU' in out and (tmp_path / 'work/iter_2.pth').is_file()
    # Pre-flight ran once, on rank 0, inside the process group.
    assert out.count('pre-flight train_dataloader: 16 samples') == 1
    assert 'terminate called' not in out


# Counts, per rank, the datasets the pre-flight checks, then runs the tool.
COUNT_CHECKS = """
import importlib, os, runpy, sys
checks = importlib.import_module('mmcvpt.launch.preflight')
check_dataset = checks.check_dataset
out = sys.argv[1]
def counted(cfg, key, deep=False):
    path = os.path.join(out, 'checked_by_rank' + os.environ['RANK'])
    with open(path, 'a') as f:
        f.write(key + '\\n')
    return check_dataset(cfg, key, deep)
checks.check_dataset = counted
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name='__main__')
"""


def test_dist_preflight_runs_on_rank_zero_only(sample, tmp_path):
    root = tmp_path / 'copy'
    shutil.copytree(sample, root)
    (root / 'annotations/validation/ADE_val_00000005.png').unlink()
    driver = tmp_path / 'count_checks.py'
    driver.write_text(COUNT_CHECKS)
    proc = run_tool(
        sys.executable,
        '-m',
        'torch.distributed.run',
        '--nproc_per_node=2',
        f'--master_port={free_port()}',
        str(driver),
        str(tmp_path),
        'tools/train.py',
        str(tiny_config(tmp_path / 'tiny.py', root)),
        '--launcher',
        'pytorch',
        '--work-dir',
        str(tmp_path / 'work'),
        env=dict(PYTHONPATH=str(REPO)),
        check=False,
        timeout=120)
    assert (tmp_path / 'checked_by_rank0').read_text().split() == [
        'train_dataloader', 'val_dataloader'
    ]
    assert not (tmp_path / 'checked_by_rank1').exists()
    # Rank 1 read nothing, yet stops with rank 0's line and exit code.
    errors = [
        line for line in proc.stderr.splitlines() if line.startswith('error:')
    ]
    assert proc.returncode != 0 and len(errors) == 2
    assert errors[0] == errors[1] and errors[0].startswith(
        'error: val_dataloader: annotation missing for image ')
    assert not (tmp_path / 'work').exists()


# tools/train.py as torchrun starts it, in one process, then a look at what
# is left once main() has returned.
LEFT_AFTER_MAIN = """
import os, runpy, sys, threading
import torch.distributed as dist
sys.argv = sys.argv[1:]
runpy.run_path('tools/train.py', run_name='__main__')
print('process group left:', dist.is_initialized())
print('threads left:', [t.name for t in threading.enumerate()
                        if t is not threading.main_thread()])
names = [open(f'/proc/self/task/{t}/comm').read().strip()
         for t in os.listdir('/proc/self/task')]
print('gloo threads left:', [n for n in names if 'gloo' in n])
"""


def test_train_tool_destroys_its_process_group(sample, tmp_path):
    proc = run_tool(
        sys.executable,
        '-c',
        LEFT_AFTER_MAIN,
        'tools/train.py',
        str(tiny_config(tmp_path / 'tiny.py', sample)),
        '--work-dir',
        str(tmp_path / 'work'),
        '--launcher',
        'pytorch',
        env=dict(
            RANK='0',
            LOCAL_RANK='0',
            WORLD_SIZE='1',
            MASTER_ADDR='127.0.0.1',
            MASTER_PORT=str(free_port())))
    assert 'process group left: False' in proc.stdout
    assert 'threads left: []' in proc.stdout
    assert 'gloo threads left: []' in proc.stdout  # joined, not abandoned


def test_truncated_image_stops_training_in_one_line(sample, tmp_path):
    root = tmp_path / 'copy'
    shutil.copytree(sample, root)
    bad = root / 'images/training/ADE_train_00000011.jpg'
    data = bad.read_bytes()
    bad.write_bytes(data[:700])  # the JPEG header survives, the body not
    extra = ("default_hooks = dict(logger=dict(interval=1), "
             "checkpoint=dict(interval=1))\n")
    work = tmp_path / 'work'
    proc = run_tool(
        'tools/train.py',
        str(tiny_config(tmp_path / 'tiny.py', root, 8, extra)),
        '--work-dir',
        str(work),
        check=False)
    errors = [
        line for line in proc.stderr.splitlines() if line.startswith('error:')
    ]
    assert proc.returncode == 1 and len(errors) == 1, proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr
    assert errors[0].startswith(f'error: cannot load {bad} (')
    latest = work / 'last_checkpoint'
    if latest.is_file():  # the image came after the first iteration
        assert errors[0].endswith(
            f'then resume from {latest.read_text().strip()} with --resume')
    else:
        assert errors[0].endswith('no checkpoint to resume from yet')


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


def test_shell_tools_honour_python(tmp_path):
    """A shell whose PATH has no environment (the system python has no
    torch): PYTHON=<venv python> is the interpreter dist_*.sh run."""
    import subprocess
    cfg = tiny_config(tmp_path / 'c.py', tmp_path / 'no_data')
    env = {k: v for k, v in os.environ.items() if k != 'VIRTUAL_ENV'}
    env.update(PATH='/usr/bin:/bin', PYTHON=sys.executable,
               PORT=str(free_port()))
    proc = subprocess.run(
        ['bash', 'tools/dist_train.sh', str(cfg), '1', '--work-dir',
         str(tmp_path / 'work')],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert f"error: train_dataloader: data_root '{tmp_path / 'no_data'}' " \
        'does not exist' in proc.stderr


@pytest.mark.parametrize('script,positional,extra', [
    ('slurm_train.sh', ['CFG.py'], ['--work-dir', 'w d']),
    ('slurm_test.sh', ['CFG.py', 'CKPT.pth'], ['--tta']),
])
def test_slurm_scripts_run_from_any_directory(tmp_path, script, positional,
                                              extra):
    """srun (faked: prints its arguments) gets the absolute tool path, the
    arguments as given (spaces kept) and --launcher=slurm; too few
    arguments print the usage."""
    import subprocess
    (tmp_path / 'bin').mkdir()
    fake = tmp_path / 'bin/srun'
    fake.write_text('#!/bin/sh\nfor a in "$@"; do echo "$a"; done\n')
    fake.chmod(0o755)
    env = dict(os.environ, PATH=f"{tmp_path / 'bin'}:{os.environ['PATH']}",
               GPUS='2', GPUS_PER_NODE='2')
    script = str(REPO / 'tools' / script)
    proc = subprocess.run(['bash', script, 'part', 'job'] + positional +
                          extra,
                          cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    argv = proc.stdout.splitlines()
    tool = 'train.py' if 'train' in script else 'test.py'
    i = argv.index(str(REPO / 'tools' / tool))
    assert argv[:2] == ['-p', 'part'] and '--ntasks=2' in argv
    assert argv[i + 1:] == positional + ['--launcher=slurm'] + extra
    short = subprocess.run(['bash', script, 'part'], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=60)
    assert short.returncode == 2 and short.stderr.startswith('usage: ')
