"""Import-time checks of the OpenMMLab stack mmcvpt is tested against.

They run first in ``import mmcvpt``, before anything imports mmseg,
mmpretrain or mmcv's ops: versions are read from the packages' own
``version.py`` files without importing them, so that a wrong mmcv gives
this module's message with the fix, not mmseg's own AssertionError.

mmseg is optional: without it mmcvpt is mmpretrain's (classification), and
mmcv needs neither mmseg's range nor its compiled ops.
"""
import importlib.util
import os.path as osp
import re
import sys
from typing import Optional

from packaging.version import Version

FIX_HINT = ('run `make env` in the mmcvpt checkout, or see README '
            '"Install into an existing OpenMMLab environment"')

# What segmentation needs on top of an mmpretrain-only install.
MMSEG_INSTALL = ('`pip install mmsegmentation==1.2.2` with an mmcv '
                 'built with its ops (README "Install into an existing '
                 'OpenMMLab environment")')
# package -> (min inclusive, max exclusive), always checked; mmpretrain
# 1.2.0 itself asserts mmcv < 2.4.0 and mmengine < 1.0.0, and imports none
# of mmcv's compiled ops (mmcv-lite is enough).
SUPPORTED = {
    'torch': ('2.0.0', '3.0.0'),
    'mmengine': ('0.10.0', '1.0.0'),
    'mmcv': ('2.0.0', '2.4.0'),
    'mmpretrain': ('1.2.0', '1.3.0'),
}
# Checked where mmseg is installed: mmseg 1.2.2 asserts mmcv < 2.2.0 and
# its models import mmcv's compiled ops at start-up.
WITH_MMSEG = {
    'mmcv': ('2.0.0', '2.2.0'),
    'mmseg': ('1.2.0', '1.3.0'),
}
_VERSION = re.compile(r"^__version__\s*(?::\s*str\s*)?=\s*['\"]([^'\"]+)['\"]",
                      re.MULTILINE)


def is_installed(package: str) -> bool:
    """Whether ``import package`` can find it, without importing it.

    A package blocked by ``sys.modules[package] = None`` or left there
    without a spec (a stub) counts as absent.
    """
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        return False


def supported_versions() -> dict:
    """``SUPPORTED``, narrowed by ``WITH_MMSEG`` where mmseg is installed."""
    if is_installed('mmseg'):
        return {**SUPPORTED, **WITH_MMSEG}
    return dict(SUPPORTED)


def _found_version(package: str) -> str:
    """``package.__version__`` without importing ``package``.

    An imported package answers itself; otherwise the version is read from
    the ``version.py`` (or ``__init__.py``) that ``import package`` would
    run, found on ``sys.path`` in import order.

    Raises:
        ImportError: ``package`` is not installed.
    """
    module = sys.modules.get(package)
    if module is not None and hasattr(module, '__version__'):
        return module.__version__
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ImportError(f"No module named '{package}'")
    folder = osp.dirname(spec.origin)
    for name in ('version.py', '__init__.py'):
        path = osp.join(folder, name)
        if osp.isfile(path):
            with open(path, encoding='utf-8') as f:
                match = _VERSION.search(f.read())
            if match:
                return match.group(1)
    return importlib.import_module(package).__version__


def check_versions(supported: Optional[dict] = None) -> None:
    """Raise ImportError if a package is outside its supported range.

    With mmseg among the packages, also checks that mmcv was built with its
    compiled ops (``mmcv._ext``), which ``mmseg.models`` imports at
    start-up; this imports mmcv itself (not its ops), after its version
    passed.

    Args:
        supported (dict, optional): package -> (min, max exclusive).
            Defaults to :func:`supported_versions`.
    """
    if supported is None:
        supported = supported_versions()
    for package, (low, high) in supported.items():
        try:
            found = _found_version(package)
        except ImportError as e:
            raise ImportError(
                f'mmcvpt needs {package}>={low},<{high} but it is not '
                f'installed ({e}); fix: {FIX_HINT}') from None
        if not Version(low) <= Version(found.split('+')[0]) < Version(high):
            raise ImportError(
                f'mmcvpt needs {package}>={low},<{high} but found {package} '
                f'{found}; fix: {FIX_HINT}')
    if 'mmseg' in supported and not is_installed('mmcv._ext'):
        raise ImportError(
            f'mmcvpt needs mmcv {_found_version("mmcv")} with compiled ops '
            '(mmcv._ext), found a build without them (mmcv-lite or '
            f'MMCV_WITH_OPS=0); fix: {FIX_HINT}')
