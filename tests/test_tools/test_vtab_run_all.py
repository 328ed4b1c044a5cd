import itertools
import os
import shlex
import subprocess

import pytest
from mmengine.config import Config, DictAction

from mmcvpt.engine.runners import resolve_batch_size
from tests.seg_fixtures import REPO
from tests.test_configs.test_cls_configs import PAPER

FAKE_PYTHON = '''#!/usr/bin/env bash
# records the command line instead of running it
printf '%q ' "$@" >> "$FAKE_LOG"; echo >> "$FAKE_LOG"
'''


def _run_all(tmp_path, *args):
    """tools/vtab/run_all.sh with a ``python`` that records its calls."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / 'python').write_text(FAKE_PYTHON)
    (bin_dir / 'python').chmod(0o755)
    log = tmp_path / 'calls.txt'
    log.write_text('')
    env = dict(
        os.environ,
        PATH=f'{bin_dir}{os.pathsep}{os.environ["PATH"]}',
        FAKE_LOG=str(log))
    proc = subprocess.run(['bash', 'tools/vtab/run_all.sh', *args],
                          cwd=REPO,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=60)
    return proc, [shlex.split(line) for line in log.read_text().splitlines()]


def _train_call(argv):
    """(config, cfg-options, processes) of a recorded python call."""
    processes = 1
    for arg in argv:
        if arg.startswith('--nproc_per_node='):
            processes = int(arg.split('=')[1])
    rest = argv[argv.index('tools/train.py') + 1:]
    options = {}
    for i, arg in enumerate(rest):
        if arg == '--cfg-options':
            for pair in itertools.takewhile(lambda a: not a.startswith('--'),
                                            rest[i + 1:]):
                key, value = pair.split('=', 1)
                options[key] = DictAction._parse_iterable(value)
    return rest[0], options, processes


@pytest.mark.parametrize('gpus', [1, 8])
def test_each_task_keeps_its_table_batch(tmp_path, gpus):
    proc, calls = _run_all(tmp_path, '--gpus', str(gpus), '--root',
                           str(tmp_path / 'work'))
    assert proc.returncode == 0, proc.stderr
    assert len(calls) == 19
    for argv in calls:
        config, options, processes = _train_call(argv)
        assert processes == gpus
        task = config[:-3].split('-', 1)[1]
        total = PAPER[task][3]
        assert f'{task} seed 0 -> {tmp_path}/work/cvpt/vtab1k/{task}/seed0 ' \
            f'(total batch {total}: {gpus} GPU(s) x {total // gpus})' \
            in proc.stdout
        # what the config's train loop then does with the same options
        cfg = Config.fromfile(REPO / config)
        cfg.merge_from_dict(options)
        split = resolve_batch_size(cfg, processes)
        assert (split.batch_size, split.total) == (total // gpus, total)


def test_gpu_count_that_does_not_divide_stops_before_any_run(tmp_path):
    proc, calls = _run_all(tmp_path, '--gpus', '32', '--bench', 'fgvc')
    assert proc.returncode == 2 and calls == []
    assert proc.stderr.strip() == (
        'run_all.sh: --gpus 32 does not divide the total batch of NABirds '
        '(16) OxfordFlowers (16) StanfordCars (16) StanfordDogs (16); use a '
        'GPU count that divides 16, or set -- --cfg-options '
        'total_batch_size=N (and the lr) yourself')
    # a total given on the command line is what is checked
    proc, calls = _run_all(tmp_path, '--gpus', '3', '--bench', 'fgvc', '--',
                           '--cfg-options', 'total_batch_size=48')
    assert proc.returncode == 0 and len(calls) == 5
    assert '(total batch 48: 3 GPU(s) x 16)' in proc.stdout


def test_dry_run_prints_the_commands(tmp_path):
    proc, calls = _run_all(tmp_path, '--gpus', '2', '--bench', 'fgvc',
                           '--dry-run', '--seeds', '0 1')
    assert proc.returncode == 0 and calls == []
    assert 'bash tools/dist_train.sh configs/fgvc/cvpt_vitb_fgvc-NABirds.py ' \
        '2 --work-dir work_dirs/vtab/cvpt/fgvc/NABirds/seed1 --cfg-options ' \
        'randomness.seed=1' in proc.stdout


def _work_dir(argv):
    return argv[argv.index('--work-dir') + 1]


def _effective(config, options):
    """The config tools/train.py would build from a recorded call."""
    cfg = Config.fromfile(REPO / config)
    cfg.merge_from_dict(options)
    return cfg


def test_val_sweep_over_prompts_and_lr(tmp_path):
    proc, calls = _run_all(tmp_path, '--val', '--tasks', 'dtd caltech101',
                           '--prompts', '1 10', '--lr', '1e-3 5e-3', '--seeds',
                           '0 1', '--root', str(tmp_path / 'w'))
    assert proc.returncode == 0, proc.stderr
    assert len(calls) == 2 * 2 * 2 * 2  # tasks x m x lr x seeds
    seen = set()
    for argv in calls:
        config, options, _ = _train_call(argv)
        task = config[:-3].split('-', 1)[1]
        m = options['model.backbone.num_prompts']
        lr = options['optim_wrapper.optimizer.lr']
        seed = options['randomness.seed']
        seen.add((task, m, lr, seed))
        lr_text = {1e-3: '1e-3', 5e-3: '5e-3'}[lr]  # as given
        assert _work_dir(argv) == f'{tmp_path}/w-val/cvpt/vtab1k/{task}/' \
            f'm{m}_lr{lr_text}/seed{seed}'
        cfg = _effective(config, options)
        # train800 -> val200; the test split is never touched
        assert cfg.train_dataloader.dataset.split == 'train800'
        assert cfg.val_dataloader.dataset.split == 'val200'
        assert cfg.test_dataloader.dataset.split == 'val200'
        assert cfg.model.backbone.num_prompts == m
        assert cfg.optim_wrapper.optimizer.lr == lr
        # the warm-up still starts at the table's 1e-6 whatever the lr
        warmup = cfg.param_scheduler[0]
        assert warmup.type == 'LinearLR'
        assert warmup.start_factor * lr == pytest.approx(1e-6)
    assert seen == set(
        itertools.product(['dtd', 'caltech101'], [1, 10], [1e-3, 5e-3],
                          [0, 1]))
    assert f'dtd m10 lr 5e-3 seed 1 -> {tmp_path}/w-val/cvpt/vtab1k/dtd/' \
        'm10_lr5e-3/seed1 (total batch 64' in proc.stdout


def test_val_without_sweep_uses_the_table(tmp_path):
    proc, calls = _run_all(tmp_path, '--val', '--bench', 'fgvc', '--tasks',
                           'NABirds')
    assert proc.returncode == 0 and len(calls) == 1
    config, options, _ = _train_call(calls[0])
    # the table's NABirds: lr 2e-4, 200 prompts; FGVC selects on val
    assert _work_dir(calls[0]) == \
        'work_dirs/vtab-val/cvpt/fgvc/NABirds/m200_lr0.0002/seed0'
    assert 'model.backbone.num_prompts' not in options
    cfg = _effective(config, options)
    assert (cfg.train_dataloader.dataset.split,
            cfg.val_dataloader.dataset.split) == ('train', 'val')


def test_chosen_values_for_a_final_run(tmp_path):
    proc, calls = _run_all(tmp_path, '--tasks', 'dtd', '--prompts', '50',
                           '--lr', '2e-3', '--seeds', '0 1 2')
    assert proc.returncode == 0 and len(calls) == 3
    for seed, argv in enumerate(calls):
        config, options, _ = _train_call(argv)
        assert _work_dir(argv) == f'work_dirs/vtab/cvpt/vtab1k/dtd/seed{seed}'
        cfg = _effective(config, options)
        assert cfg.train_dataloader.dataset.split == 'train800val200'
        assert cfg.test_dataloader.dataset.split == 'test'
        assert cfg.model.backbone.num_prompts == 50
        assert cfg.optim_wrapper.optimizer.lr == 2e-3
        assert cfg.param_scheduler[0].start_factor * 2e-3 == \
            pytest.approx(1e-6)
    assert 'dtd (m 50, lr 2e-3) seed 2 -> work_dirs/vtab/cvpt/vtab1k/dtd/' \
        'seed2' in proc.stdout


@pytest.mark.parametrize('args, message', [
    (['--prompts', '1 5 10'], 'a --prompts/--lr sweep needs --val: choosing '
     'among runs by their test accuracy selects on the test set'),
    (['--lr', '1e-3 2e-3'], 'a --prompts/--lr sweep needs --val'),
    (['--val', '--method', 'linear', '--prompts', '5'], '--method linear '
     'has no prompts (--prompts 5)'),
    (['--val', '--prompts', 'ten'], '--prompts takes whole numbers, got ten'),
    (['--val', '--lr', '0.1;'], '--lr takes numbers such as 1e-3, got 0.1;'),
    (['--tasks', 'dtd nope'], 'no config for task nope '
     '(configs/vtab1k/cvpt_vitb_vtab1k-nope.py)'),
])
def test_refused_before_any_run(tmp_path, args, message):
    proc, calls = _run_all(tmp_path, *args)
    assert proc.returncode == 2 and calls == []
    assert proc.stderr.startswith('run_all.sh: ' + message)
