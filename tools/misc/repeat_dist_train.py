"""Train the tiny test config N times in a row with tools/dist_train.sh on
CPU processes and count the clean exits (issue #9, item 1).

A run is clean when the launcher exits 0 and no process printed an abort
(``terminate called ...``, ``Aborted``, a signal exit). The tiny config
(tools/misc/tiny_seg_config.py, shared with the tool test suite) trains on the
ADE20K sample (tools/misc/make_samples.py), both written to ``--out``
(default: a temporary folder), with every run's output.

Example::

    python tools/misc/repeat_dist_train.py 20 --out work_dirs/repeat_dist
"""
import argparse
import os
import os.path as osp
import re
import socket
import subprocess
import sys
import tempfile
import time

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(osp.dirname(HERE))
sys.path.insert(0, HERE)  # the sibling modules, also when imported by path

import make_samples  # noqa: E402
from tiny_seg_config import write_tiny_config  # noqa: E402

ABORT = re.compile(
    r'terminate called|Aborted|core dumped|SIGABRT|Signals\.SIGABRT|'
    r'exitcode\s*:\s*-\d+|Segmentation fault')


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('runs', type=int, help='number of runs (e.g. 20)')
    parser.add_argument('--nproc', type=int, default=2)
    parser.add_argument('--iters', type=int, default=2)
    parser.add_argument('--out', help='folder for the logs (default: temp)')
    parser.add_argument('--timeout', type=int, default=600)
    args = parser.parse_args(argv)
    out = args.out or tempfile.mkdtemp(prefix='repeat_dist_')
    os.makedirs(out, exist_ok=True)
    # reused when complete
    sample = make_samples.make('ade20k', osp.join(out, 'sample'))
    cfg = write_tiny_config(osp.join(out, 'tiny.py'), sample, args.iters)
    clean = 0
    for i in range(1, args.runs + 1):
        start = time.perf_counter()
        work = osp.join(out, f'run{i:02d}')
        # PYTHON: dist_train.sh runs this interpreter, whatever PATH holds.
        env = dict(os.environ, PORT=str(_free_port()), PYTHON=sys.executable)
        try:
            proc = subprocess.run(
                ['bash', 'tools/dist_train.sh', cfg,
                 str(args.nproc), '--work-dir', work],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
                timeout=args.timeout)
            code, text = proc.returncode, proc.stdout + proc.stderr
        except Exception as e:  # a hang (timeout) is a failed run too
            code, text = 'timeout', str(e)
        with open(osp.join(out, f'run{i:02d}.log'), 'w') as f:
            f.write(text)
        aborts = sorted({m.group(0) for m in ABORT.finditer(text)})
        ok = code == 0 and not aborts
        clean += ok
        print(
            f'run {i}/{args.runs}: exit {code}, '
            f'{"clean" if ok else "NOT clean " + str(aborts)}, '
            f'{time.perf_counter() - start:.0f} s',
            flush=True)
    print(f'{clean}/{args.runs} runs exited 0 with no abort line '
          f'({args.nproc} CPU processes each; logs in {out})')
    return 0 if clean == args.runs else 1


if __name__ == '__main__':
    sys.exit(main())
