"""Import-time checks of the OpenMMLab stack mmcvpt is tested against."""
import importlib
import importlib.util

from packaging.version import Version

FIX_HINT = ('run `make env` in the mmcvpt checkout, or see README '
            '"Install into an existing OpenMMLab environment"')

# package -> (min inclusive, max exclusive); mmseg 1.2.2 itself asserts
# mmcv < 2.2.0, mmpretrain 1.2.0 needs mmengine < 1.0.0.
SUPPORTED = {
    'torch': ('2.0.0', '3.0.0'),
    'mmengine': ('0.10.0', '1.0.0'),
    'mmcv': ('2.0.0', '2.2.0'),
    'mmseg': ('1.2.0', '1.3.0'),
    'mmpretrain': ('1.2.0', '1.3.0'),
}


def _found_version(package):
    return importlib.import_module(package).__version__


def check_versions(supported=SUPPORTED):
    """Raise ImportError if a package is outside its supported range.

    Also checks that mmcv was built with its compiled ops (``mmcv._ext``),
    which ``mmseg.models`` imports at start-up.
    """
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
    if importlib.util.find_spec('mmcv._ext') is None:
        raise ImportError(
            f'mmcvpt needs mmcv {_found_version("mmcv")} with compiled ops '
            '(mmcv._ext), found a build without them (mmcv-lite or '
            f'MMCV_WITH_OPS=0); fix: {FIX_HINT}')
