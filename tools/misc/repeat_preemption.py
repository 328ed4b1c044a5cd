"""Repeat the 2-process preemption test N times and count the clean runs
(issue #17, item 8): tools/train.py on 2 CPU processes, SIGTERM to rank 1
in iteration 2, the same command again, losses against an uninterrupted
run (tests/test_launch/test_preemption.py::check_preemption).

Example::

    python tools/misc/repeat_preemption.py 5 --out work_dirs/repeat_preempt
"""
import argparse
import os
import os.path as osp
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

from tests.test_launch.test_preemption import check_preemption  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('runs', type=int, help='number of runs (e.g. 5)')
    parser.add_argument('--out', help='folder for the runs (default: temp)')
    args = parser.parse_args(argv)
    out = args.out or tempfile.mkdtemp(prefix='repeat_preemption_')
    clean = 0
    for i in range(1, args.runs + 1):
        start = time.perf_counter()
        work = Path(out) / f'run{i:02d}'
        os.makedirs(work, exist_ok=True)
        try:
            check_preemption(work)
            ok, why = True, ''
        except Exception:  # an assertion or a timeout: not clean
            ok, why = False, traceback.format_exc(limit=1).strip()
        clean += ok
        print(f'run {i}/{args.runs}: {"clean" if ok else "FAILED " + why}, '
              f'{time.perf_counter() - start:.0f} s', flush=True)
    print(f'{clean}/{args.runs} preempted-and-resumed runs matched the '
          f'uninterrupted one (runs in {out})')
    return 0 if clean == args.runs else 1


if __name__ == '__main__':
    sys.exit(main())
