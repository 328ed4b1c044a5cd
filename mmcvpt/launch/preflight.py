"""Checks tools/train.py and tools/test.py run before a long job starts.

A missing annotation or a corrupt image would otherwise stop training at a
random iteration, possibly hours in. Each problem is reported as one line
naming the file or value and what is expected.

In a distributed run the checks run once, on rank 0, after the process group
exists; the other ranks wait for the outcome (:func:`preflight_once`). The
default check reads a few header bytes per file; ``deep=True`` (``--check-
images``) decodes every image and segmentation map in a process pool.
"""
import copy
import difflib
import inspect
import multiprocessing
import os
import os.path as osp
import sys
import time

import torch.distributed as dist
from mmengine.logging import print_log
from mmengine.registry import DATASETS, MODELS

from ..peft.pretrained_file import PRETRAINED_TYPES, missing_pretrained
from .errors import build_error

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
IMAGE_SIGNATURES = (b'\xff\xd8\xff', PNG_SIGNATURE, b'BM', b'GIF8', b'II*\x00',
                    b'MM\x00*', b'RIFF')
PROGRESS_EVERY = 5000  # a progress line per 5000 samples/files, if more


class PreflightError(ValueError):
    """A problem with the user's data, weights or config, in one line."""


def _accepted_kwargs(cls) -> set:
    """Keyword arguments a class accepts, following ``**kwargs`` up its
    bases (CVPTViT -> PromptedViT -> VisionTransformer)."""
    names = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        params = inspect.signature(init).parameters.values()
        names |= {
            p.name
            for p in params
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        }
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            break
    return names - {'self'}


def check_backbone(cfg) -> None:
    """Unknown backbone arguments and a missing local pretrained file."""
    backbone = cfg.get('model', {}).get('backbone')
    if not isinstance(backbone, dict) or 'type' not in backbone:
        return
    with MODELS.switch_scope_and_registry(cfg.get('default_scope')) as reg:
        cls = reg.get(backbone['type'])
    if cls is not None and inspect.isclass(cls):
        allowed = _accepted_kwargs(cls)
        for key in backbone:
            if key not in allowed | {'type', '_delete_'}:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ''
                raise PreflightError(
                    f"model.backbone: {backbone['type']} has no argument "
                    f"'{key}'{hint}")
    init_cfg = backbone.get('init_cfg')
    if isinstance(init_cfg, dict) and \
            init_cfg.get('type') in PRETRAINED_TYPES:
        missing = missing_pretrained(init_cfg.get('checkpoint'))
        if missing is not None:
            raise PreflightError(missing)


def check_model_arguments(cfg) -> None:
    """Build ``cfg.model`` on the meta device (no memory, no weights
    loaded): a bad argument value stops here, in one line
    (:func:`~mmcvpt.launch.errors.build_error`), before the Runner writes
    anything. Any other failure (e.g. an op without a meta kernel) is left
    to the real build."""
    model = cfg.get('model')
    if not isinstance(model, dict) or 'type' not in model:
        return
    import torch
    with MODELS.switch_scope_and_registry(cfg.get('default_scope')) as reg:
        try:
            with torch.device('meta'):
                reg.build(copy.deepcopy(model))
        except Exception as e:
            line = build_error(e)
            if line is not None:
                raise PreflightError(line) from None


def _head(path, size):
    """The first ``size`` bytes of a file, None if it does not exist."""
    try:
        with open(path, 'rb') as f:
            return f.read(size)
    except (FileNotFoundError, IsADirectoryError):
        return None


def _check_image(img):
    head = _head(img, 8)
    if head is None:
        return f'image missing: {img}'
    if not head.startswith(IMAGE_SIGNATURES):
        return (f'corrupt image {img}: not a JPEG/PNG/BMP/GIF/TIFF/WebP '
                'file')
    return None


def _check_seg_map(seg, img):
    if not seg.lower().endswith('.png'):  # other formats: existence only
        return None if osp.isfile(seg) else \
            f'annotation missing for image {img}: expected {seg}'
    # PNG signature, then the IHDR chunk: length 13, type, width, height.
    head = _head(seg, 24)
    if head is None:
        return f'annotation missing for image {img}: expected {seg}'
    if len(head) < 24 or not head.startswith(PNG_SIGNATURE) or \
            head[12:16] != b'IHDR' or head[16:20] == bytes(4) or \
            head[20:24] == bytes(4):
        return (f'corrupt annotation {seg}: expected a PNG file with an '
                'IHDR header')
    return None


def decode_error(path):
    """Fully decode an image file; the decoder's complaint or None."""
    from PIL import Image
    try:
        with Image.open(path) as image:
            image.load()  # names the problem; cv2 would only return None
    except Exception as e:  # noqa: BLE001  any decoder failure is the answer
        return f'{type(e).__name__}: {e}'
    return None


def _progress(loader_key, what, done, total, start):
    if total >= PROGRESS_EVERY and (done % PROGRESS_EVERY == 0
                                    or done == total):
        print_log(
            f'pre-flight {loader_key}: {what} {done}/{total} '
            f'({time.perf_counter() - start:.1f} s)',
            logger='current')


def _decode_all(loader_key, paths, workers=None):
    """Decode ``paths`` in a process pool; stop at the first bad file."""
    workers = workers or len(os.sched_getaffinity(0))
    start = time.perf_counter()
    if workers > 1 and len(paths) > 1:
        # fork, like the DataLoader's workers: the children only decode.
        ctx = multiprocessing.get_context(
            'fork' if sys.platform.startswith('linux') else None)
        pool = ctx.Pool(workers)
        results = pool.imap(decode_error, paths, chunksize=64)
    else:
        pool, results = None, map(decode_error, paths)
    try:
        for done, (path, error) in enumerate(zip(paths, results), 1):
            if error is not None:
                raise PreflightError(
                    f'{loader_key}: cannot decode {path}: {error}; '
                    'replace or remove the file')
            _progress(loader_key, 'decoded', done, len(paths), start)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()


def check_dataset(cfg, loader_key: str, deep: bool = False) -> int:
    """Build ``cfg[loader_key].dataset`` and check every listed file.

    Args:
        cfg (Config): The config.
        loader_key (str): e.g. ``'train_dataloader'``.
        deep (bool): Also decode every image and segmentation map.
            Defaults to False: existence and header bytes only.

    Returns:
        int: The number of samples checked.
    """
    loader = cfg.get(loader_key)
    if not loader:
        return 0
    dataset_cfg = loader['dataset']
    root = dataset_cfg.get('data_root')
    if root is not None and not osp.isdir(root):
        raise PreflightError(
            f"{loader_key}: data_root '{root}' does not exist; set "
            f'{loader_key}.dataset.data_root (e.g. with --cfg-options) to '
            'the dataset folder')
    with DATASETS.switch_scope_and_registry(cfg.get('default_scope')) as reg:
        try:
            dataset = reg.build(dataset_cfg)
        except FileNotFoundError as e:
            raise PreflightError(f'{loader_key}: {e}') from None
    if not hasattr(dataset, 'get_data_info'):  # not an mmengine dataset
        return 0
    start = time.perf_counter()
    files = []
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        img, seg = info.get('img_path'), info.get('seg_map_path')
        error = _check_image(img) if img else None
        if error is None and seg:
            error = _check_seg_map(seg, img)
        if error is not None:
            raise PreflightError(f'{loader_key}: {error}')
        files += [p for p in (img, seg) if p]
        _progress(loader_key, 'checked', i + 1, len(dataset), start)
    if deep:
        _decode_all(loader_key, files)
    print_log(
        f'pre-flight {loader_key}: {len(dataset)} samples, {len(files)} '
        f'files OK ({"decoded" if deep else "headers"}, '
        f'{time.perf_counter() - start:.1f} s)',
        logger='current')
    return len(dataset)


def preflight(cfg, loader_keys, deep: bool = False) -> None:
    """Run :func:`check_backbone`, :func:`check_model_arguments` and
    :func:`check_dataset` per loader."""
    check_backbone(cfg)
    check_model_arguments(cfg)
    for key in loader_keys:
        check_dataset(cfg, key, deep=deep)


def preflight_once(cfg, loader_keys, deep: bool = False) -> None:
    """:func:`preflight` on rank 0 only; every rank exits on its outcome.

    Call it after the process group is started. Rank 0 broadcasts the
    error line (or None), so every rank stops with the same ``error: ...``
    and exit code 1 instead of each rank reading the whole dataset.
    """
    distributed = dist.is_available() and dist.is_initialized()
    crash = None
    error = None
    if not distributed or dist.get_rank() == 0:
        try:
            preflight(cfg, loader_keys, deep=deep)
        except PreflightError as e:
            error = str(e)
        except Exception as e:
            # Tell the waiting ranks, then show rank 0's traceback.
            error = f'pre-flight failed on rank 0: {type(e).__name__}: {e}'
            crash = e
    if distributed:
        outcome = [error]
        dist.broadcast_object_list(outcome, src=0)
        error = outcome[0]
    if crash is not None:
        raise crash
    if error is not None:
        sys.exit(f'error: {error}')
