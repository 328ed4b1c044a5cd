"""Checks tools/train.py and tools/test.py run before a long job starts.

A missing annotation or a corrupt image would otherwise stop training at a
random iteration, possibly hours in. Each problem is reported as one line
naming the file or value and what is expected.
"""
import difflib
import inspect
import os.path as osp

from mmengine.registry import DATASETS, MODELS

IMAGE_SIGNATURES = (b'\xff\xd8\xff', b'\x89PNG\r\n\x1a\n', b'BM', b'GIF8',
                    b'II*\x00', b'MM\x00*', b'RIFF')


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
    if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
        path = str(init_cfg.get('checkpoint'))
        if '://' not in path and not osp.isfile(path):
            raise PreflightError(
                f"pretrained backbone '{path}' not found; create it with "
                '`python tools/model_converters/vit2mmcvpt.py '
                f'ORIGINAL_VIT(.npz|.pth|.safetensors) {path}` (README: '
                '"Pretrained weights")')


def _has_image_signature(path) -> bool:
    with open(path, 'rb') as f:
        head = f.read(8)
    return head.startswith(IMAGE_SIGNATURES)


def check_dataset(cfg, loader_key: str) -> int:
    """Build ``cfg[loader_key].dataset`` and check every listed file.

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
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        img = info.get('img_path')
        if img is not None:
            if not osp.isfile(img):
                raise PreflightError(f'{loader_key}: image missing: {img}')
            if not _has_image_signature(img):
                raise PreflightError(
                    f'{loader_key}: corrupt image {img}: not a JPEG/PNG/BMP/'
                    'GIF/TIFF/WebP file')
        seg = info.get('seg_map_path')
        if seg is not None and not osp.isfile(seg):
            raise PreflightError(f'{loader_key}: annotation missing for '
                                 f'image {img}: expected {seg}')
    return len(dataset)


def preflight(cfg, loader_keys) -> None:
    """Run :func:`check_backbone` and :func:`check_dataset` per loader."""
    check_backbone(cfg)
    for key in loader_keys:
        check_dataset(cfg, key)
