"""Class count and class names shared by VTAB1k and FGVC, so that a user's
own data in either layout needs only ``num_classes`` (or ``classes``)."""
import difflib
import os.path as osp
from typing import Optional, Sequence, Union

from mmengine.fileio import list_from_file


def read_classes(classes: Union[str, Sequence[str], None]) -> Optional[list]:
    """``classes`` as mmpretrain takes it -> a list of names (or None).

    Args:
        classes (str | Sequence[str], optional): A text file with one class
            name per line, or the names themselves.
    """
    if classes is None:
        return None
    if isinstance(classes, str):
        if not osp.isfile(osp.expanduser(classes)):
            raise FileNotFoundError(f'classes file not found: {classes}')
        return list_from_file(osp.expanduser(classes))
    return [str(c) for c in classes]


def resolve_num_classes(num_classes, classes, table: dict, name: str,
                        what: str, kind: str, folder: str) -> int:
    """The class count: ``num_classes``, else the table's, else
    ``len(classes)``; an unknown name without either is one line naming
    the name, the folder and ``num_classes=`` as the fix.

    Args:
        table (dict): Known name -> (number of classes, ...).
        name (str): The task / dataset asked for.
        what (str): What ``name`` is, e.g. "task".
        kind (str): What ``table`` lists, e.g. "the 19 VTAB-1K tasks".
        folder (str): Where the files of ``name`` are read from.
    """
    if num_classes is not None:
        # bool is an int subclass; True classes is a mistake
        if (not isinstance(num_classes, int) or isinstance(num_classes, bool)
                or num_classes < 1):
            raise ValueError(f'num_classes must be a positive integer, got '
                             f'{num_classes!r}')
        return num_classes
    if name in table:
        return table[name][0]
    if classes:
        return len(classes)
    close = difflib.get_close_matches(name, list(table), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ''
    found = '' if osp.isdir(folder) else ' (not found)'
    raise ValueError(f'{what} {name!r} is not one of {kind}{hint}: for '
                     f'your own data in this layout, read from {folder}'
                     f'{found}, set num_classes=<number of classes>')


def check_classes(metainfo: Optional[dict], classes: Optional[list],
                  num_classes: int, name: str) -> dict:
    """Merge ``classes`` into ``metainfo`` (metainfo's own names win, as in
    mmpretrain) and check that any names given number ``num_classes``."""
    metainfo = dict(metainfo or {})
    source = 'metainfo' if 'classes' in metainfo else 'classes'
    if 'classes' not in metainfo and classes is not None:
        metainfo['classes'] = classes
    if 'classes' in metainfo and len(metainfo['classes']) != num_classes:
        raise ValueError(f'{source} has {len(metainfo["classes"])} names, '
                         f'{name} has num_classes={num_classes}')
    return metainfo
