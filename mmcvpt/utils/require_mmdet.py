"""Imported by the Mask2Former configs (``custom_imports``) before
``mmdet.models``: mmseg's ``Mask2FormerHead`` is built from mmdet's pixel
decoder, transformer decoder, losses and matcher, so these configs need
mmdet; every other config works without it.

On a machine with CUDA, mmdet's pixel decoder calls mmcv's compiled
``MultiScaleDeformableAttention`` op for CUDA tensors, so mmcv needs CUDA
ops there (the default wheel of ``make env`` has CPU ops only).

Raises:
    ImportError: one line naming the missing or unsupported mmdet, or the
        missing CUDA ops, and the fix.
"""
from packaging.version import Version

from .version_check import _found_version, is_installed

# mmdet 3.3.0 asserts mmcv>=2.0.0rc4,<2.2.0, mmseg 1.2.2's range too.
MMDET = ('3.0.0', '3.4.0')
MMDET_INSTALL = 'pip install mmdet==3.3.0'


def check_mmdet() -> None:
    """Raise ImportError unless mmdet within ``MMDET`` is importable."""
    low, high = MMDET
    if not is_installed('mmdet'):
        raise ImportError(
            f'mmcvpt: Mask2Former configs need mmdet>={low},<{high} '
            f'(Mask2FormerHead is built from mmdet modules) but it is not '
            f'installed; fix: {MMDET_INSTALL}')
    found = _found_version('mmdet')
    if not Version(low) <= Version(found.split('+')[0]) < Version(high):
        raise ImportError(
            f'mmcvpt: Mask2Former configs need mmdet>={low},<{high} but '
            f'found mmdet {found}; fix: {MMDET_INSTALL}')


def check_cuda_ops() -> None:
    """Raise ImportError if CUDA is visible but mmcv has no CUDA ops."""
    import torch
    if not torch.cuda.is_available():
        return
    from mmcv.ops import get_compiling_cuda_version
    if get_compiling_cuda_version() == 'not available':
        raise ImportError(
            'mmcvpt: Mask2Former on CUDA needs mmcv built with CUDA ops '
            '(MultiScaleDeformableAttention), found CPU-only ops; fix: '
            '`MMCV_CUDA_OPS=1 make env` (README "Quick start") or '
            '`--device cpu`')


check_mmdet()
check_cuda_ops()
