import importlib.metadata
import importlib.util

import mmcv
import pytest
from packaging.version import Version

import mmcvpt
from mmcvpt.utils import version_check


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


def test_out_of_range_version_names_package_version_and_fix(monkeypatch):
    monkeypatch.setattr(mmcv, '__version__', '2.2.0')
    with pytest.raises(ImportError) as err:
        version_check.check_versions()
    msg = str(err.value)
    assert msg.startswith('mmcvpt needs mmcv>=2.0.0,<2.2.0 but found mmcv '
                          '2.2.0; fix: run `make env`')
    assert '\n' not in msg


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
