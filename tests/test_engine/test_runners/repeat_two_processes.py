"""Repeat the 2-process total-batch run of test_total_batch_loop.py, to
see that it never flakes (not collected by pytest)::

    python -m tests.test_engine.test_runners.repeat_two_processes 20
"""
import sys
import tempfile
from pathlib import Path

from tests.test_engine.test_runners.test_total_batch_loop import (
    recorded_batches, run_two_processes)


def main(times: int) -> int:
    failed = 0
    for i in range(times):
        with tempfile.TemporaryDirectory() as tmp:
            proc, work = run_two_processes(Path(tmp))
            ok = proc.returncode == 0 and all(
                recorded_batches(work, r) == [4, 4] for r in (0, 1))
            failed += not ok
            print(f'run {i + 1}/{times}: {"ok" if ok else "FAILED"}',
                  flush=True)
            if not ok:
                print((proc.stdout + proc.stderr)[-3000:])
    print(f'{times - failed}/{times} passed')
    return int(failed > 0)


if __name__ == '__main__':
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10))
