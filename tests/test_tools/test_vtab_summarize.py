import json
import shlex

import pytest

from mmcvpt.datasets import FGVC_DATASETS, VTAB1K_TASKS
from tests.seg_fixtures import load_tool
from tests.test_tools.test_vtab_run_all import (_effective, _run_all,
                                                _train_call, _work_dir)

TOOL = 'tools/vtab/summarize.py'


@pytest.fixture(scope='module')
def tool():
    return load_tool(TOOL)


def _write_run(root,
               task,
               seed,
               acc,
               bench='vtab1k',
               batch=None,
               gpus=1,
               stamp='20260101_000000'):
    """A run folder as mmengine writes it; with ``batch``, its dumped config
    and log (the per-process batch and the process count)."""
    d = root / 'cvpt' / bench / task / f'seed{seed}' / stamp
    (d / 'vis_data').mkdir(parents=True)
    if batch is not None:
        (d / 'vis_data/config.py').write_text(
            f"total_batch_size = {batch * gpus}\n"
            f"train_dataloader = dict(\n    batch_size={batch},\n"
            f"    dataset=dict(task='{task}'))\n")
        (d / f'{stamp}.log').write_text(
            f'Runtime environment:\n    seed: 0\n    GPU number: {gpus}\n')
    lines = [
        dict(loss=1.0, step=1), {
            'accuracy/top1': 1.0,
            'step': 50
        },
        dict(loss=0.5, step=99), {
            'accuracy/top1': acc,
            'step': 100
        }
    ]
    (d / 'vis_data/scalars.json').write_text('\n'.join(
        json.dumps(x) for x in lines) + '\n')


@pytest.fixture
def runs(tmp_path):
    # task i: seed 0 -> 50 + i, seed 1 -> 52 + i (mean 51 + i, std 1.41)
    for i, task in enumerate(VTAB1K_TASKS):
        _write_run(tmp_path, task, 0, 50.0 + i)
        _write_run(tmp_path, task, 1, 52.0 + i)
    return tmp_path


def test_table_hand_computed(tool, runs, tmp_path, capsys):
    tool.main(
        [str(runs), '--seeds', '0', '1', '--csv',
         str(tmp_path / 'out.csv')])
    out = capsys.readouterr().out.splitlines()
    assert out[0] == \
        '| vtab1k (cvpt, seeds 0, 1) | top-1 (%) | total batch |'
    assert '| cifar | 51.00 ± 1.41 | ? |' in out  # no config / log written
    assert '| smallnorb_ele | 69.00 ± 1.41 | ? |' in out
    # Natural: tasks 0-6 -> 51..57; Specialized: 7-10 -> 58..61;
    # Structured: 11-18 -> 62..69.
    assert '| Natural mean (7 tasks) | 54.00 |  |' in out
    assert '| Specialized mean (4 tasks) | 59.50 |  |' in out
    assert '| Structured mean (8 tasks) | 65.50 |  |' in out
    assert '| Mean of group means | 59.67 |  |' in out  # (54+59.5+65.5)/3
    assert '| Mean of 19 tasks | 60.00 |  |' in out  # mean of 51..69
    rows = (tmp_path / 'out.csv').read_text().splitlines()
    assert rows[0] == 'name,top1,total_batch'
    assert rows[1] == 'cifar,51.00 ± 1.41,?'
    assert rows[-1] == 'Mean of 19 tasks,60.00,'


def test_missing_runs(tool, runs, capsys):
    import shutil
    shutil.rmtree(runs / 'cvpt/vtab1k/kitti/seed1')
    tool.main([str(runs), '--seeds', '0', '1'])
    captured = capsys.readouterr()
    assert '| kitti | 64.00 (1/2 seeds) | ? |' in captured.out
    assert '| Structured mean (8 tasks) | incomplete |  |' in captured.out
    assert '| Natural mean (7 tasks) | 54.00 |  |' in captured.out
    assert '| Mean of group means | incomplete |  |' in captured.out
    tool.main([str(runs), '--seeds', '0', '1', '2'])
    captured = capsys.readouterr()
    assert '| Natural mean (7 tasks) | incomplete |  |' in captured.out
    assert '| Mean of 19 tasks | incomplete |  |' in captured.out
    assert 'missing 20 runs (no accuracy/top1): cifar seed 2' in \
        captured.err
    assert 'kitti seed 1' in captured.err


def test_fgvc(tool, tmp_path, capsys):
    for i, name in enumerate(FGVC_DATASETS):
        _write_run(tmp_path, name, 0, 80.0 + 2 * i, bench='fgvc')
    tool.main([str(tmp_path), '--bench', 'fgvc'])
    out = capsys.readouterr().out.splitlines()
    assert '| NABirds | 82.00 | ? |' in out
    assert '| Mean of 5 tasks | 84.00 |  |' in out
    assert not any('group' in line for line in out)


def test_total_batch_recorded_per_run(tool, tmp_path, capsys):
    """Per-process batch x GPU number of each run, checked against the
    table's total (configs/vtab1k/cvpt_vitb_vtab1k-<task>.py)."""
    for seed in (0, 1):
        _write_run(tmp_path, 'dtd', seed, 70.0, batch=8, gpus=8)  # 64
        _write_run(tmp_path, 'cifar', seed, 90.0, batch=32, gpus=1)  # 32
    # sun397 (table: 16): one run as run_all.sh --gpus 8 trained before
    # total_batch_size, 16 per GPU on 8 GPUs; one resumed on 2 GPUs
    _write_run(tmp_path, 'sun397', 0, 50.0, batch=16, gpus=8)
    _write_run(tmp_path, 'sun397', 1, 51.0, batch=8, gpus=2)
    _write_run(
        tmp_path, 'sun397', 1, 52.0, batch=16, gpus=1, stamp='20260102_000000')
    _write_run(tmp_path, 'kitti', 0, 60.0)  # no config / log: unknown
    tool.main([str(tmp_path), '--seeds', '0', '1'])
    captured = capsys.readouterr()
    assert '| dtd | 70.00 ± 0.00 | 64 |' in captured.out
    assert '| cifar | 90.00 ± 0.00 | 32 |' in captured.out
    assert '| sun397 | 51.00 ± 1.41 | 16 / 128 (table: 16) |' in captured.out
    assert '| kitti | 60.00 (1/2 seeds) | ? |' in captured.out
    assert 'total batch differs from the table (e.g. runs from before ' \
        'total_batch_size, on several GPUs): sun397: 16 / 128 (table: 16)' \
        in captured.err
    assert tool.run_total_batch(tmp_path / 'cvpt/vtab1k/sun397/seed1') == \
        [16, 16]


def _write_val_run(root, task, candidate, seed, acc, split='val200'):
    """A selection run (run_all.sh --val) with the split its dumped config
    evaluated on."""
    d = root / 'cvpt/vtab1k' / task / candidate / f'seed{seed}/20260101_000000'
    (d / 'vis_data').mkdir(parents=True)
    (d / 'vis_data/config.py').write_text(
        "val_dataloader = dict(\n    batch_size=1,\n"
        f"    dataset=dict(split='{split}', task='{task}'))\n")
    lines = [{'accuracy/top1': 99.0, 'step': 5}, {'accuracy/top1': acc}]
    (d / 'vis_data/scalars.json').write_text('\n'.join(
        json.dumps(x) for x in lines) + '\n')


@pytest.fixture
def sweep(tmp_path):
    root = tmp_path / 'work_dirs/vtab-val'
    runs = {
        # dtd: m10_lr1e-3 best (mean 71 over seeds 0, 1), tied with
        # m200_lr1e-3 (fewer prompts win); m50 would win but lacks seed 1
        ('dtd', 'm1_lr1e-3'): [60.0, 62.0],
        ('dtd', 'm10_lr1e-3'): [70.0, 72.0],
        ('dtd', 'm10_lr5e-3'): [69.0, 70.0],
        ('dtd', 'm200_lr1e-3'): [71.0, 71.0],
        ('dtd', 'm50_lr1e-3'): [90.0],
        # cifar: a tie in accuracy and m goes to the smaller lr
        ('cifar', 'm5_lr1e-2'): [80.0, 80.0],
        ('cifar', 'm5_lr2e-3'): [80.0, 80.0],
        ('cifar', 'm20_lr1e-3'): [79.0, 79.5],
    }
    for (task, candidate), accs in runs.items():
        for seed, acc in enumerate(accs):
            _write_val_run(root, task, candidate, seed, acc)
    # svhn: the best-looking run was evaluated on the test split
    _write_val_run(root, 'svhn', 'm1_lr1e-2', 0, 95.0, split='test')
    _write_val_run(root, 'svhn', 'm1_lr1e-2', 1, 95.0)
    _write_val_run(root, 'svhn', 'm5_lr1e-2', 0, 85.0)
    _write_val_run(root, 'svhn', 'm5_lr1e-2', 1, 86.0)
    return root


def test_select_best_val_candidate(tool, sweep, tmp_path, capsys):
    commands = tmp_path / 'final.sh'
    tool.main([
        str(sweep), '--select', '--seeds', '0', '1', '--commands',
        str(commands), '--final-seeds', '0', '1', '2'
    ])
    captured = capsys.readouterr()
    out = captured.out.splitlines()
    assert out[0] == ('| vtab1k (cvpt, val, seeds 0, 1) | m | lr '
                      '| val top-1 (%) | candidates |')
    assert '| dtd | 10 | 1e-3 | 71.00 ± 1.41 | 4 |' in out
    assert '| cifar | 5 | 2e-3 | 80.00 ± 0.00 | 3 |' in out
    assert '| svhn | 5 | 1e-2 | 85.50 ± 0.71 | 1 |' in out
    assert '| kitti | — | — | — | 0 |' in out
    assert 'left out 2 incomplete candidates: dtd m50_lr1e-3 (1/2 seeds); ' \
        'svhn m1_lr1e-2 (1/2 seeds; seed 0 evaluated on test)' in \
        captured.err
    assert 'no complete candidate for 16 tasks (no final run written): ' \
        'caltech101, oxford_flowers102' in captured.err
    lines = commands.read_text().splitlines()
    runs = [line for line in lines if line.startswith('tools/')]
    assert runs == [
        f'tools/vtab/run_all.sh --bench vtab1k --method cvpt --root '
        f"{tmp_path}/work_dirs/vtab --seeds '0 1 2' --tasks {task} "
        f'--prompts {m} --lr {lr}'
        for task, m, lr in [('cifar', 5,
                             '2e-3'), ('dtd', 10, '1e-3'), ('svhn', 5, '1e-2')]
    ]
    assert lines[0] == '#!/usr/bin/env bash'
    assert 'set -euo pipefail' in lines


def test_select_commands_are_the_final_runs(tool, sweep, tmp_path, capsys):
    """The written lines, run by run_all.sh (recording python): train800val200
    -> test with the chosen m and lr as --cfg-options."""
    commands = tmp_path / 'final.sh'
    tool.main([
        str(sweep), '--select', '--seeds', '0', '1', '--commands',
        str(commands), '--final-root',
        str(tmp_path / 'final'), '--run-args', '--gpus 2'
    ])
    line = next(line for line in commands.read_text().splitlines()
                if '--tasks dtd ' in line)
    argv = shlex.split(line)
    assert argv[0] == 'tools/vtab/run_all.sh' and argv[-2:] == ['--gpus', '2']
    proc, calls = _run_all(tmp_path, *argv[1:])
    assert proc.returncode == 0, proc.stderr
    assert len(calls) == 2  # the final seeds default to the selection's
    for seed, call in enumerate(calls):
        config, options, processes = _train_call(call)
        assert processes == 2
        assert config == 'configs/vtab1k/cvpt_vitb_vtab1k-dtd.py'
        assert _work_dir(
            call) == f'{tmp_path}/final/cvpt/vtab1k/dtd/seed{seed}'
        cfg = _effective(config, options)
        assert cfg.model.backbone.num_prompts == 10
        assert cfg.optim_wrapper.optimizer.lr == 1e-3
        assert cfg.train_dataloader.dataset.split == 'train800val200'
        assert cfg.test_dataloader.dataset.split == 'test'


def test_select_needs_a_final_root(tool, tmp_path):
    with pytest.raises(SystemExit, match='--final-root is needed'):
        tool.main([
            str(tmp_path), '--select', '--commands',
            str(tmp_path / 'final.sh')
        ])


def test_no_runs_under_root_is_one_line(tool, tmp_path):
    (tmp_path / 'demo_cls/20261127_000000').mkdir(parents=True)
    with pytest.raises(SystemExit) as e:
        tool.main([str(tmp_path / 'demo_cls')])
    assert str(e.value) == (
        f'error: no cvpt vtab1k runs under {tmp_path}/demo_cls: summarize.py '
        f'reads {tmp_path}/demo_cls/cvpt/vtab1k/<task>/seed<k>/, the layout '
        f'tools/vtab/run_all.sh --root {tmp_path}/demo_cls writes (a single '
        "tools/train.py run, e.g. make demo-cls's work_dirs/demo_cls, prints "
        'its accuracy in its own log)')


def test_total_batch_from_the_train_loops_line(tool, tmp_path):
    """Runs of configs whose loop splits the total dump batch_size='auto';
    the total is the loop's log line (accumulation included)."""
    _write_run(tmp_path, 'dtd', 0, 70.0)
    d = tmp_path / 'cvpt/vtab1k/dtd/seed0/20260101_000000'
    (d / 'vis_data/config.py').write_text(
        "total_batch_size = 64\ntrain_dataloader = dict(batch_size='auto')\n")
    (d / '20260101_000000.log').write_text(
        'GPU number: 2\n... - INFO - total batch 64 = 16 per process x 2 '
        'processes x 2 accumulation\n')
    assert tool.run_total_batch(tmp_path / 'cvpt/vtab1k/dtd/seed0') == [64]
