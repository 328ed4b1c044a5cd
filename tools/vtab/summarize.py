"""Summarise VTAB-1K / FGVC runs into the standard tables.

Reads ``<work_root>/<method>/<bench>/<task>/seed<k>/`` (the layout
tools/vtab/run_all.sh writes) and takes, per run, the last
``accuracy/top1`` in ``*/vis_data/scalars.json``: the test accuracy at the
end of training, and the total batch the run trained with (the train
loop's ``total batch N = ...`` log line, or for older runs the per-process
``train_dataloader.batch_size`` in ``*/vis_data/config.py`` times the ``GPU
number`` in the run's log; ``?`` if they are missing), flagged where it is
not the task's ``total_batch_size`` in configs/. Prints markdown (and writes
CSV with ``--csv``): one row per task, the VTAB-1K group means, and two
overall means, labelled: the mean of the 19 tasks and the mean of the three
group means. With several seeds each
cell is mean ± std (sample std) over seeds; a task missing a seed shows
``(n/N seeds)`` and every mean it enters reads ``incomplete``.

    python tools/vtab/summarize.py work_dirs/vtab --method cvpt --csv out.csv

With ``--select`` it reads a selection sweep instead (``run_all.sh --val
--prompts ... --lr ...``: ``<root>/<method>/<bench>/<task>/m<m>_lr<lr>/
seed<k>/``, trained on train800, evaluated on val200), picks per task the
(m, lr) with the best val200 accuracy (mean over ``--seeds``; a candidate
missing a seed is left out and listed; ties go to fewer prompts, then the
smaller lr) and writes the final runs with ``--commands``: one
``run_all.sh --tasks <task> --prompts <m> --lr <lr>`` line per task, which
trains on train800val200 and reports test accuracy once.

    python tools/vtab/summarize.py work_dirs/vtab-val --select \
        --seeds 0 1 --commands final.sh --final-seeds 0 1 2
"""
import argparse
import ast
import csv
import glob
import json
import os.path as osp
import re
import shlex
import statistics
import sys

from mmcvpt.datasets import FGVC_DATASETS, VTAB1K_GROUPS, VTAB1K_TASKS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def run_accuracy(run_dir):
    """Last accuracy/top1 logged in a run folder, or None."""
    last = None
    for path in sorted(
            glob.glob(osp.join(run_dir, '*/vis_data/scalars.json'))):
        with open(path) as f:
            for line in f:
                record = json.loads(line)
                if 'accuracy/top1' in record:
                    last = record['accuracy/top1']
    return last


def _dict_items(node):
    """{key: value node} of a ``dict(...)`` call or ``{...}`` literal."""
    if isinstance(node, ast.Call):
        return {kw.arg: kw.value for kw in node.keywords}
    if isinstance(node, ast.Dict):
        return {
            getattr(k, 'value', None): v
            for k, v in zip(node.keys, node.values)
        }
    return {}


def _dumped_value(config_file, *keys):
    """A value (e.g. train_dataloader.batch_size) in a config mmengine
    dumped, or None."""
    with open(config_file) as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                getattr(t, 'id', None) == keys[0] for t in node.targets):
            value = node.value
            for key in keys[1:]:
                value = _dict_items(value).get(key)
            try:
                return ast.literal_eval(value) if value else None
            except ValueError:
                return None
    return None


def _train_batch_size(config_file):
    """train_dataloader.batch_size in a config mmengine dumped, or None."""
    return _dumped_value(config_file, 'train_dataloader', 'batch_size')


def run_eval_splits(run_dir):
    """The split each session of a run evaluated on (val_dataloader's, from
    its dumped config); None where unknown."""
    return [
        _dumped_value(config, 'val_dataloader', 'dataset', 'split')
        for config in sorted(
            glob.glob(osp.join(run_dir, '*/vis_data/config.py')))
    ]


def run_total_batch(run_dir):
    """Total batch each session of a run trained with (per process x
    processes), one entry per ``<timestamp>/`` folder; None where unknown."""
    totals = []
    for config in sorted(glob.glob(osp.join(run_dir, '*/vis_data/config.py'))):
        stamp_dir = osp.dirname(osp.dirname(config))
        log = osp.join(stamp_dir, osp.basename(stamp_dir) + '.log')
        batch = _train_batch_size(config)
        world = logged = None
        if osp.isfile(log):
            with open(log) as f:
                text = f.read()
            # the config's train loop logs 'total batch N = B per process
            # x ...' (its dumped batch_size is 'auto')
            logged = re.search(r'total batch (\d+) = ', text)
            found = re.search(r'GPU number: (\d+)', text)
            world = int(found.group(1)) if found else None
        if logged:
            totals.append(int(logged.group(1)))
        else:
            totals.append(batch * world if isinstance(batch, int) and world
                          else None)
    return totals


def table_total_batch(method, bench, task):
    """total_batch_size written in the task's generated config, or None."""
    path = osp.join(REPO, 'configs', bench, f'{method}_vitb_{bench}-{task}.py')
    if not osp.isfile(path):
        return None
    with open(path) as f:
        found = re.search(r'^total_batch_size = (\d+)', f.read(), re.M)
    return int(found.group(1)) if found else None


def collect(root, method, bench, tasks, seeds):
    """-> ({task: [acc per seed]}, {task: [total batch per run]},
    [missing run descriptions])."""
    results, batches, missing = {}, {}, []
    for task in tasks:
        accs, totals = [], []
        for seed in seeds:
            run = osp.join(root, method, bench, task, f'seed{seed}')
            acc = run_accuracy(run)
            if acc is None:
                missing.append(f'{task} seed {seed} ({run})')
            else:
                accs.append(acc)
                totals += run_total_batch(run) or [None]
        results[task] = accs
        batches[task] = totals
    return results, batches, missing


def batch_cell(totals, expected=None):
    """Distinct total batches of a task's runs; the table's value where it
    differs, e.g. ``256 (table: 32)``."""
    if not totals:
        return '—'
    seen = sorted({t for t in totals if t is not None})
    text = ' / '.join(map(str, seen)) + (' / ?' if None in totals else '')
    if not seen:
        text = '?'
    elif expected is not None and seen != [expected]:
        text += f' (table: {expected})'
    return text


def cell(values, num_seeds):
    """-> (mean or None if a seed is missing, text)."""
    if not values:
        return None, '—'
    mean = statistics.mean(values)
    text = f'{mean:.2f}'
    if len(values) > 1:
        text += f' ± {statistics.stdev(values):.2f}'
    if len(values) < num_seeds:
        return None, f'{text} ({len(values)}/{num_seeds} seeds)'
    return mean, text


def summarize(results, groups=None, num_seeds=1):
    """-> rows [(name, text)]; a mean needs every seed of every task."""
    rows = []
    task_means = {}
    for task, accs in results.items():
        mean, text = cell(accs, num_seeds)
        task_means[task] = mean
        rows.append((task, text))
    complete = all(v is not None for v in task_means.values())
    if groups:
        group_means = {}
        for group in VTAB1K_GROUPS:
            members = [t for t in results if groups[t] == group]
            values = [task_means[t] for t in members]
            ok = all(v is not None for v in values)
            group_means[group] = statistics.mean(values) if ok else None
            rows.append((f'{group} mean ({len(members)} tasks)',
                         f'{group_means[group]:.2f}' if ok else 'incomplete'))
        ok = all(v is not None for v in group_means.values())
        rows.append(('Mean of group means',
                     f'{statistics.mean(group_means.values()):.2f}'
                     if ok else 'incomplete'))
    rows.append((f'Mean of {len(results)} tasks',
                 f'{statistics.mean(task_means.values()):.2f}'
                 if complete else 'incomplete'))
    return rows


VAL_SPLITS = ('val200', 'val')  # VTAB-1K, FGVC
CANDIDATE = re.compile(r'^m(\d+)_lr([0-9.]+(?:e-?\d+)?)$')


def collect_candidates(root, method, bench, tasks, seeds):
    """-> ({task: {(m, lr): [val acc per seed]}}, [incomplete candidates]).

    ``lr`` is the folder's text (as given to run_all.sh --lr). A run whose
    dumped config evaluated on another split than val200 / val (e.g. the
    test set) counts as missing: selecting on it would be test-set
    peeking."""
    found, incomplete = {}, []
    for task in tasks:
        task_dir = osp.join(root, method, bench, task)
        found[task] = {}
        for name in sorted(glob.glob(osp.join(task_dir, 'm*_lr*'))):
            match = CANDIDATE.match(osp.basename(name))
            if not match:
                continue
            key = (int(match.group(1)), match.group(2))
            done, wrong = [], []
            for seed in seeds:
                run = osp.join(name, f'seed{seed}')
                splits = set(run_eval_splits(run)) - {None}
                if splits - set(VAL_SPLITS):
                    wrong.append(f'seed {seed} evaluated on '
                                 f'{"/".join(sorted(splits))}')
                    continue
                acc = run_accuracy(run)
                if acc is not None:
                    done.append(acc)
            if len(done) == len(seeds):
                found[task][key] = done
            else:
                note = ''.join(f'; {w}' for w in wrong)
                incomplete.append(f'{task} m{key[0]}_lr{key[1]} '
                                  f'({len(done)}/{len(seeds)} seeds{note})')
    return found, incomplete


def select(candidates):
    """The best (m, lr) by mean accuracy; ties: fewer prompts, smaller lr.
    -> ((m, lr), mean) or None."""
    if not candidates:
        return None
    key = max(
        candidates,
        key=lambda k: (statistics.mean(candidates[k]), -k[0], -float(k[1])))
    return key, statistics.mean(candidates[key])


def final_commands(choices, method, bench, root, seeds, run_args=''):
    """run_all.sh lines for the final runs of the chosen (m, lr)."""
    lines = [
        '#!/usr/bin/env bash',
        '# Final runs, (m, lr) chosen per task on val200 (FGVC: val) by '
        'tools/vtab/summarize.py --select:',
        '# train800val200 (FGVC: train+val) -> test accuracy once, at the '
        'end of training.',
        '# Run from the repository root; then:',
        f'#   python tools/vtab/summarize.py {root} --method {method} '
        f'--bench {bench} --seeds {" ".join(map(str, seeds))}',
        'set -euo pipefail',
    ]
    seeds = ' '.join(map(str, seeds))
    for task, (m, lr) in choices.items():
        line = (f'tools/vtab/run_all.sh --bench {bench} --method {method} '
                f'--root {shlex.quote(root)} --seeds {shlex.quote(seeds)} '
                f'--tasks {task} --prompts {m} --lr {lr}')
        lines.append(line + (f' {run_args}' if run_args else ''))
    return '\n'.join(lines) + '\n'


def main_select(args, tasks):
    found, incomplete = collect_candidates(args.root, args.method, args.bench,
                                           tasks, args.seeds)
    seeds = ', '.join(map(str, args.seeds))
    print(f'| {args.bench} ({args.method}, val, seeds {seeds}) | m | lr '
          '| val top-1 (%) | candidates |')
    print('|---|---|---|---|---|')
    choices, missing = {}, []
    for task in tasks:
        best = select(found[task])
        if best is None:
            missing.append(task)
            print(f'| {task} | — | — | — | 0 |')
            continue
        (m, lr), _ = best
        choices[task] = (m, lr)
        _, text = cell(found[task][(m, lr)], len(args.seeds))
        print(f'| {task} | {m} | {lr} | {text} | {len(found[task])} |')
    if args.commands:
        root = args.final_root
        if root is None:
            stripped = osp.normpath(args.root)
            if not stripped.endswith('-val'):
                raise SystemExit(
                    'summarize.py: --final-root is needed when the sweep '
                    'root does not end in -val (run_all.sh --val writes to '
                    '<root>-val)')
            root = stripped[:-len('-val')]
        with open(args.commands, 'w') as f:
            f.write(
                final_commands(choices, args.method, args.bench, root,
                               args.final_seeds or args.seeds, args.run_args))
        print(
            f'final runs of {len(choices)} tasks: {args.commands}',
            file=sys.stderr)
    if incomplete:
        print(
            f'left out {len(incomplete)} incomplete candidates: ' +
            '; '.join(incomplete),
            file=sys.stderr)
    if missing:
        print(
            f'no complete candidate for {len(missing)} tasks (no final run '
            'written): ' + ', '.join(missing),
            file=sys.stderr)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('root', help='work root, e.g. work_dirs/vtab')
    parser.add_argument('--method', default='cvpt')
    parser.add_argument(
        '--bench', choices=['vtab1k', 'fgvc'], default='vtab1k')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0])
    parser.add_argument('--csv', help='also write the table here')
    parser.add_argument(
        '--select',
        action='store_true',
        help='choose each task\'s (m, lr) on val accuracy from a '
        'run_all.sh --val sweep under root')
    parser.add_argument(
        '--commands', help='--select: write the final runs here')
    parser.add_argument(
        '--final-seeds',
        type=int,
        nargs='+',
        help='--select: seeds of the final runs (default: --seeds)')
    parser.add_argument(
        '--final-root',
        help='--select: work root of the final runs (default: root '
        'without its -val suffix)')
    parser.add_argument(
        '--run-args',
        default='',
        help='--select: more run_all.sh arguments for the final runs, '
        'e.g. "--gpus 8 --slurm PARTITION"')
    args = parser.parse_args(argv)
    if args.bench == 'vtab1k':
        tasks = list(VTAB1K_TASKS)
        groups = {t: g for t, (_, g) in VTAB1K_TASKS.items()}
    else:
        tasks, groups = list(FGVC_DATASETS), None
    if args.select:
        return main_select(args, tasks)
    results, batches, missing = collect(args.root, args.method, args.bench,
                                        tasks, args.seeds)
    if not any(results.values()):
        raise SystemExit(
            f'error: no {args.method} {args.bench} runs under {args.root}: '
            'summarize.py reads '
            f'{osp.join(args.root, args.method, args.bench)}'
            '/<task>/seed<k>/, the layout tools/vtab/run_all.sh --root '
            f'{args.root} writes (a single tools/train.py run, e.g. make '
            "demo-cls's work_dirs/demo_cls, prints its accuracy in its own "
            'log)')
    rows = summarize(results, groups, len(args.seeds))
    batch_texts = {
        task: batch_cell(totals,
                         table_total_batch(args.method, args.bench, task))
        for task, totals in batches.items()
    }
    rows = [(name, text, batch_texts.get(name, '')) for name, text in rows]
    seeds = ', '.join(map(str, args.seeds))
    print(f'| {args.bench} ({args.method}, seeds {seeds}) | top-1 (%) '
          '| total batch |')
    print('|---|---|---|')
    for name, text, batch in rows:
        print(f'| {name} | {text} | {batch} |')
    if args.csv:
        with open(args.csv, 'w', newline='') as f:
            writer = csv.writer(f)
            writer.writerow(['name', 'top1', 'total_batch'])
            writer.writerows(rows)
    off = [
        f'{task}: {text}' for task, text in batch_texts.items()
        if 'table' in text
    ]
    if off:
        print(
            'total batch differs from the table (e.g. runs from before '
            'total_batch_size, on several GPUs): ' + '; '.join(off),
            file=sys.stderr)
    if missing:
        print(
            f'missing {len(missing)} runs (no accuracy/top1): ' +
            '; '.join(missing),
            file=sys.stderr)


if __name__ == '__main__':
    main()
