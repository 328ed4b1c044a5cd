"""The README's segmentation commands, as written, in a fresh shell.

The block that trains the headline config is read from README.md and run by
``bash`` with an empty environment (PATH=/usr/bin:/bin: no torch), in a copy
of the repository whose data/ade/ADEChallengeData2016 is the embedded
sample, after the README's converter command turned a ViT-B_16.npz in
Google's layout (tiny width, random) into pretrain/vit-b16_in21k.pth.
The tiny override: configs/cvpt_vitb_ade20k.py there derives from the real
headline config and narrows it (tests/seg_fixtures.TINY_OVERRIDES, 2
iterations, no loader workers), so ``iter_160000`` becomes ``iter_2``; 8
GPUs become 2 CPU processes; CONFIG/CKPT placeholders become that config and
checkpoint. The multi-node and Slurm lines need a cluster and are left out
(the Slurm scripts have their own test).
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.seg_fixtures import REPO, TINY_OVERRIDES, free_port, make_sample
from tests.test_tools.test_vit2mmcvpt import google_arrays

HEADLINE = 'configs/cvpt_vitb_ade20k.py'
# mmseg's ADE20K loaders start 4 persistent workers per loader and process:
# seconds each on 2 cores, for 8 tiny images
NO_WORKERS = ''.join(
    f'{key}.update(num_workers=0, persistent_workers=False)\n'
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'))
CLUSTER_ONLY = ('NNODES=', 'slurm_')


def readme_block(marker):
    """The command lines of the README's bash block containing marker."""
    text = (REPO / 'README.md').read_text()
    for block in re.findall(r'```bash\n(.*?)```', text, re.S):
        if marker in block:
            lines = [line.split('#')[0].strip() for line in block.splitlines()]
            return [line for line in lines if line]
    raise AssertionError(f'README has no bash block with {marker!r}')


def tiny(command):
    command = command.replace('iter_160000', 'iter_2')
    command = command.replace('CONFIG', HEADLINE).replace(
        'CKPT', 'work_dirs/cvpt_vitb_ade20k/iter_2.pth')
    # 8 GPUs -> 2 CPU processes (the GPU count follows the checkpoint or the
    # config on dist_*.sh lines)
    return re.sub(r'^(tools/dist_\w+\.sh .*?) 8\b', r'\1 2', command)


def test_readme_segmentation_commands_in_a_fresh_shell(tmp_path):
    commands = readme_block(f'python tools/train.py {HEADLINE}')
    assert commands[0] == 'source .venv/bin/activate'
    run = [
        tiny(c) for c in commands
        if not any(word in c for word in CLUSTER_ONLY)
    ]
    # the weights, as "Pretrained weights" converts them (the ViT-B line)
    convert = readme_block('ViT-B_16.npz')[0]
    assert convert.endswith('ViT-B_16.npz pretrain/vit-b16_in21k.pth')
    assert any(c.startswith('tools/dist_train.sh') for c in run)
    assert any('--tta' in c for c in run)

    root = tmp_path / 'mmcvpt'
    for name in ('tools', 'configs'):
        shutil.copytree(REPO / name, root / name)
    (root / '.venv').symlink_to(Path(sys.executable).parents[1])
    sample = make_sample(tmp_path / 'samples')
    (root / 'data/ade').mkdir(parents=True)
    (root / 'data/ade/ADEChallengeData2016').symlink_to(sample)
    headline = root / HEADLINE
    headline.rename(root / 'configs/cvpt_vitb_ade20k_full.py')
    headline.write_text("_base_ = ['./cvpt_vitb_ade20k_full.py']\n"
                        "data_root = 'data/ade/ADEChallengeData2016'\n" +
                        TINY_OVERRIDES +
                        'train_cfg = dict(max_iters=2, val_interval=2)\n'
                        'param_scheduler = []\n' + NO_WORKERS)

    # Google's layout at the tiny width (224 px: 14 x 14 + 1 positions)
    np.savez(root / 'ViT-B_16.npz', **google_arrays(
        C=64, HEADS=4, L=4, P=16, FF=128, tokens=197))
    script = 'set -e\n' + '\n'.join(run[:1] + [convert] + run[1:]) + '\n'
    env = dict(PATH='/usr/bin:/bin', HOME=os.environ.get('HOME', '/tmp'),
               PORT=str(free_port()))
    proc = subprocess.run(['bash', '-c', script], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f'{script}\n{log[-4000:]}'
    work = root / 'work_dirs/cvpt_vitb_ade20k'
    assert (work / 'iter_2.pth').is_file()
    assert (work / 'iter_2_peft.pth').is_file()
    # one training log per train command, one metrics line per test command
    tests = [c for c in run if 'test' in c.split()[0]]
    assert log.count('Iter(test)') >= len(tests) and 'mIoU' in log
    assert len(list((root / 'vis').rglob('*.png'))) == 8
    assert len(list((root / 'preds').glob('*.png'))) == 8
