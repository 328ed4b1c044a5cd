"""Shared by the tool tests: loading a tools/ script as a module, the ADE20K
sample and a tiny-width variant of the headline config that trains in seconds
on a CPU."""
import importlib.util
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO_CONFIG = REPO / 'configs/demo/cvpt_vitb_ade20k-sample.py'

TINY_OVERRIDES = '''
crop_size = (64, 64)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=64, num_layers=4, num_heads=4,
                  feedforward_channels=128),
        img_size=crop_size, out_indices=(0, 1, 2, 3), num_prompts=4),
    neck=dict(in_channels=[64] * 4, out_channels=32),
    decode_head=dict(in_channels=[32] * 4, channels=16),
    auxiliary_head=dict(in_channels=32, channels=8))
train_dataloader = dict(dataset=dict(data_root=data_root, pipeline=[
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(128, 64), ratio_range=(0.8, 1.2),
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')]))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 64), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')]
val_dataloader = dict(
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
default_hooks = dict(logger=dict(interval=1))
# 2 images per process (plain mmengine) in the 1- and the 2-process tests:
# the demo's total of 2 would leave 1 per process on 2, and BN (SyncBN
# becomes BN on CPU) cannot train UPerHead's 1x1 pooling branch on 1 image.
total_batch_size = None
'''


def load_tool(path):
    """Import a script under the repository (``tools/...py``) as a module."""
    path = REPO / path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_sample(root):
    make_samples = load_tool('tools/misc/make_samples.py')
    return Path(make_samples.make('ade20k', str(root)))


def tiny_config(path, data_root, iters=2, extra=''):
    """Write a tiny config deriving from the demo config; returns its path."""
    path = Path(path)
    path.write_text(
        f"_base_ = ['{DEMO_CONFIG}']\n"
        f"data_root = '{data_root}'\n" + TINY_OVERRIDES +
        f"train_cfg = dict(max_iters={iters}, val_interval={iters})\n"
        f"param_scheduler = []\n" + extra)
    return path


def run_tool(*args, env=None, check=True, timeout=300):
    """Run a tools/ script with this interpreter; returns CompletedProcess."""
    full_env = dict(os.environ, **(env or {}))
    full_env['PATH'] = str(Path(sys.executable).parent) + os.pathsep + \
        full_env.get('PATH', '')
    cmd = list(args)
    if cmd[0].endswith('.py'):
        cmd = [sys.executable] + cmd
    proc = subprocess.run(
        cmd,
        cwd=REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'{cmd} failed ({proc.returncode}):\n'
                             f'{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}')
    return proc


def logged_losses(text):
    """{iteration: loss} from mmengine's training log lines."""
    return {
        int(m.group(1)): float(m.group(2))
        for m in re.finditer(
            r'Iter\(train\)\s+\[\s*(\d+)/\d+\].*?\bloss: '
            r'([0-9.]+)', text)
    }


def free_port():
    """A TCP port nobody listens on now (for a distributed run's master)."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def dist_train(cfg, work, *extra, **kwargs):
    """``tools/dist_train.sh CFG 2 --work-dir WORK ...`` on a free port."""
    return run_tool(
        'tools/dist_train.sh',
        str(cfg),
        '2',
        '--work-dir',
        str(work),
        *extra,
        env=dict(PORT=str(free_port())),
        timeout=kwargs.pop('timeout', 120),
        **kwargs)
