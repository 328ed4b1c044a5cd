"""tools/misc/repeat_dist_train.py: N two-process CPU trainings of the tiny
config, counted; a tool that needs nothing from the test suite."""
import ast
import subprocess
import sys

from tests.seg_fixtures import REPO, tiny_config

TOOL = REPO / 'tools/misc/repeat_dist_train.py'


def _imported_modules(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield node.module or ''


def test_imports_nothing_from_tests():
    modules = set(_imported_modules(TOOL))
    assert {'make_samples', 'tiny_seg_config'} <= modules
    assert not [m for m in modules if m.split('.')[0] == 'tests']


def _run(tmp_path, *args):
    # From another folder, so that the repository is not on sys.path: a
    # `tests` import would fail (or find another package of that name).
    return subprocess.run(
        [sys.executable, str(TOOL), *args, '--out', str(tmp_path / 'out')],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)


def test_writes_the_tests_tiny_config_and_sample(tmp_path):
    proc = _run(tmp_path, '0')
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = tmp_path / 'out'
    assert proc.stdout.splitlines() == [
        f'0/0 runs exited 0 with no abort line (2 CPU processes each; logs '
        f'in {out})'
    ]
    expected = tiny_config(tmp_path / 'expected.py', out / 'sample/ade20k')
    assert (out / 'tiny.py').read_text() == expected.read_text()
    assert len(list((out / 'sample/ade20k/images/training').glob('*.jpg'))) \
        == 16


def test_one_clean_run_is_counted(tmp_path):
    proc = _run(tmp_path, '1', '--iters', '1')
    out = tmp_path / 'out'
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith('run 1/1: exit 0, clean, ')
    assert lines[1] == ('1/1 runs exited 0 with no abort line (2 CPU '
                        f'processes each; logs in {out})')
    log = (out / 'run01.log').read_text()
    assert 'Iter(train) [1/1]' in log and 'mIoU' in log
    assert (out / 'run01/iter_1.pth').is_file()
