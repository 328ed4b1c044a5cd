import importlib.metadata
import importlib.util
import os
import subprocess
import sys
import types

import mmcv
import pytest
from packaging.version import Version

import mmcvpt
from mmcvpt.utils import version_check
from tests.seg_fixtures import REPO


def test_installed_stack_is_supported():
    version_check.check_versions()
    import mmcv.ops  # noqa: F401  compiled ops are importable
    assert importlib.util.find_spec('mmcv._ext') is not None


def test_version_matches_the_installed_distribution():
    # What pip reports, written by setup.py at install time; a stale value
    # means mmcvpt/version.py changed after `make env` (reinstall).
    installed = importlib.metadata.version('mmcvpt')
    assert mmcvpt.__version__ == installed
    assert mmcvpt.version_info == Version(installed).release


IMPORTED = "raise SystemExit('stub mmcv was imported')\n"
STUBS = {
    'version in __init__': {'__init__.py': "__version__ = '2.2.0'\n" +
                            IMPORTED},
    'version.py': {'__init__.py': IMPORTED,
                   'version.py': "__version__ = '2.2.0'\n"},
}


@pytest.mark.parametrize('stub', STUBS)
def test_wrong_mmcv_is_mmcvpts_message_before_any_import(tmp_path, stub):
    """``import mmcvpt`` in a fresh interpreter with a stub mmcv 2.2.0 first
    on sys.path (mmseg would raise its own AssertionError on it): the
    version is read, the stub never imported, mmseg/mmpretrain untouched,
    and the error is mmcvpt's one line with the fix."""
    (tmp_path / 'mmcv').mkdir()
    for name, text in STUBS[stub].items():
        (tmp_path / 'mmcv' / name).write_text(text)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(tmp_path), str(REPO), os.environ.get('PYTHONPATH', '')]))
    proc = subprocess.run([
        sys.executable, '-c', 'import sys\ntry:\n    import mmcvpt\n'
        "finally:\n    print([m for m in ('mmseg', 'mmpretrain', 'mmcv') "
        'if m in sys.modules])'
    ], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        'ImportError: mmcvpt needs mmcv>=2.0.0,<2.2.0 but found mmcv 2.2.0;'
        ' fix: run `make env` in the mmcvpt checkout, or see README '
        '"Install into an existing OpenMMLab environment"')
    assert 'stub mmcv was imported' not in proc.stderr
    assert proc.stdout.strip() == '[]'


def test_missing_package(monkeypatch):
    real = version_check._found_version

    def fake(package):
        if package == 'mmpretrain':
            raise ImportError("No module named 'mmpretrain'")
        return real(package)

    monkeypatch.setattr(version_check, '_found_version', fake)
    with pytest.raises(
            ImportError,
            match=r'mmcvpt needs mmpretrain>=1\.2\.0'
            r',<1\.3\.0 but it is not installed'):
        version_check.check_versions()


def test_mmcv_without_ops(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, 'find_spec', lambda name, *a: None
        if name == 'mmcv._ext' else real(name, *a))
    with pytest.raises(
            ImportError,
            match=r'mmcvpt needs mmcv 2\.1\.0 with '
            r'compiled ops .*mmcv-lite'):
        version_check.check_versions()


def test_is_installed_counts_every_way_of_being_absent(monkeypatch):
    assert version_check.is_installed('mmpretrain')
    assert not version_check.is_installed('no_such_package_mmcvpt')
    # A test's block: find_spec returns None for the package and raises
    # ModuleNotFoundError for its submodules not yet imported.
    monkeypatch.setitem(sys.modules, 'mmseg', None)
    assert not version_check.is_installed('mmseg')
    assert not version_check.is_installed('mmseg.not_imported_yet')
    # A stub without a spec: find_spec raises ValueError.
    monkeypatch.setitem(sys.modules, 'mmseg', types.ModuleType('mmseg'))
    assert not version_check.is_installed('mmseg')


def _without(monkeypatch, *names):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, 'find_spec', lambda name, *a: None
        if name in names else real(name, *a))


def _mmcv_version(monkeypatch, version):
    real = version_check._found_version
    monkeypatch.setattr(
        version_check, '_found_version', lambda package: version
        if package == 'mmcv' else real(package))


def test_without_mmseg_mmpretrain_stack_and_mmcv_lite(monkeypatch):
    """No mmseg: mmseg's range and mmcv's ops are not asked for; mmcv is
    checked against mmpretrain 1.2.0's own range (< 2.4.0)."""
    _without(monkeypatch, 'mmseg', 'mmcv._ext')
    assert version_check.supported_versions() == version_check.SUPPORTED
    assert 'mmseg' not in version_check.SUPPORTED
    version_check.check_versions()  # mmcv 2.1.0 without ops: fine
    _mmcv_version(monkeypatch, '2.3.1')
    version_check.check_versions()
    _mmcv_version(monkeypatch, '2.4.0')
    with pytest.raises(ImportError) as e:
        version_check.check_versions()
    assert str(e.value) == (
        'mmcvpt needs mmcv>=2.0.0,<2.4.0 but found mmcv 2.4.0; fix: run '
        '`make env` in the mmcvpt checkout, or see README "Install into an '
        'existing OpenMMLab environment"')


def test_with_mmseg_its_mmcv_range_and_ops(monkeypatch):
    assert version_check.supported_versions()['mmcv'] == ('2.0.0', '2.2.0')
    _mmcv_version(monkeypatch, '2.3.1')
    with pytest.raises(ImportError, match=r'mmcv>=2\.0\.0,<2\.2\.0 but '
                       r'found mmcv 2\.3\.1'):
        version_check.check_versions()
