"""One line for the errors a user's config or data cause in a tool run.

Each function takes an exception and returns the line (or a part of it), or
None when the exception is not of its kind: a bug keeps its traceback.
"""
import re
from typing import Optional

import torch.distributed as dist

# The message itself, or the last line of a DataLoader worker's re-raised
# traceback (whose source lines quote the f-string too).
_LOAD_FAILED = re.compile(r'^(?:AssertionError: )?failed to load image: (.+)$',
                          re.MULTILINE)
# Python's TypeError for an argument ``__init__`` does not accept, and
# mmengine's KeyError for a ``type`` that no registry has.
_NAMED = re.compile(r'^(?:(\w+)\.__init__\(\) |(\S+) is not in the )')
_PEER_LOST = re.compile(r'Connection (?:closed|reset) by peer|Broken pipe')
BUILD_ERRORS = (ValueError, KeyError, TypeError, AssertionError)


def failed_image(exc: BaseException):
    """The image or annotation a loading transform failed on, or None.

    Knows mmcv's ``'failed to load image: PATH'`` (cv2 decoded nothing; also
    inside a DataLoader worker's re-raised error) and, in the main process,
    any exception raised inside ``LoadImageFromFile``/``LoadAnnotations``.

    Returns:
        tuple[str, str] | None: The file and the reason.
    """
    from mmcv.transforms import LoadAnnotations, LoadImageFromFile
    match = _LOAD_FAILED.search(str(exc))
    if match:
        return match.group(1).strip(), 'no image data could be decoded'
    path, tb = None, exc.__traceback__
    while tb is not None:
        local = tb.tb_frame.f_locals
        results = local.get('results')
        if isinstance(results, dict):
            if isinstance(local.get('self'), LoadImageFromFile):
                path = results.get('img_path', path)
            elif isinstance(local.get('self'), LoadAnnotations):
                path = results.get('seg_map_path', path)
        tb = tb.tb_next
    if path is None:
        return None
    return path, f'{type(exc).__name__}: {exc}'.splitlines()[0]


def _built_class(exc: BaseException) -> Optional[str]:
    """The class mmengine's ``build_from_cfg`` was building when ``exc``
    was raised (the innermost build); None outside a build, 'it' when the
    class cannot be told.

    The frame after ``build_from_cfg`` is the class's ``__init__`` (its
    qualified name names the class); arguments the ``__init__`` does not
    accept, and an unknown ``type``, fail inside ``build_from_cfg``, and
    Python's TypeError / mmengine's KeyError name the class.
    """
    frames, tb = [], exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame.f_code)
        tb = tb.tb_next
    builds = [
        i for i, code in enumerate(frames)
        if code.co_name == 'build_from_cfg' and 'mmengine' in code.co_filename
    ]
    if not builds:
        return None
    after = frames[builds[-1] + 1:]
    if after and after[0].co_name == '__init__':
        return after[0].co_qualname.rsplit('.', 2)[-2]
    match = _NAMED.match(str(exc.args[0]) if exc.args else '')
    return match.group(1) or match.group(2) if match else 'it'


def build_error(exc: BaseException) -> Optional[str]:
    """``'cannot build CLASS from the config: MESSAGE'`` for an error raised
    while mmengine built a class from the config (a bad argument value, an
    unknown ``type`` or argument), else None.

    Only one-line messages of :data:`BUILD_ERRORS` (TypeErrors about
    arguments) count: anything else is a bug whose traceback is the answer.
    """
    if not isinstance(exc, BUILD_ERRORS):
        return None
    message = str(exc.args[0] if isinstance(exc, KeyError) and exc.args else
                  exc)
    if not message or '\n' in message or (isinstance(exc, TypeError) and
                                          'argument' not in message):
        return None
    name = _built_class(exc)
    if name is None:
        return None
    return f'cannot build {name} from the config: {message}'


def peer_lost(exc: BaseException) -> Optional[str]:
    """One line for a rank whose partner died first (its error says why)."""
    match = _PEER_LOST.search(str(exc))
    if match is None or not dist.is_initialized():
        return None
    return (f'error: rank {dist.get_rank()} stopped: another rank ended '
            f'first ({match.group(0)}); its error above says why')
