"""VTAB-1K in NOAH's filelist layout.

``<data_root>/<task>/{train800,val200,train800val200,test}.txt``, each line
``relative/path.jpg label`` with paths relative to ``<data_root>/<task>``.
A folder of your own in this layout works as a task with ``num_classes``.
"""
import os.path as osp
from typing import Optional, Sequence, Union

from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS

from .utils import check_classes, read_classes, resolve_num_classes

# task -> (number of classes, group)
VTAB1K_TASKS = {
    'cifar': (100, 'Natural'),
    'caltech101': (102, 'Natural'),
    'dtd': (47, 'Natural'),
    'oxford_flowers102': (102, 'Natural'),
    'oxford_iiit_pet': (37, 'Natural'),
    'svhn': (10, 'Natural'),
    'sun397': (397, 'Natural'),
    'patch_camelyon': (2, 'Specialized'),
    'eurosat': (10, 'Specialized'),
    'resisc45': (45, 'Specialized'),
    'diabetic_retinopathy': (5, 'Specialized'),
    'clevr_count': (8, 'Structured'),
    'clevr_dist': (6, 'Structured'),
    'dmlab': (6, 'Structured'),
    'kitti': (4, 'Structured'),
    'dsprites_loc': (16, 'Structured'),
    'dsprites_ori': (16, 'Structured'),
    'smallnorb_azi': (18, 'Structured'),
    'smallnorb_ele': (9, 'Structured'),
}
VTAB1K_GROUPS = ('Natural', 'Specialized', 'Structured')
VTAB1K_SPLITS = ('train800', 'val200', 'train800val200', 'test')


def parse_filelist(path: str, root: str, num_classes: int) -> list:
    """``relative/path label`` lines -> data infos; errors name file:line."""
    data_list = []
    with open(path, encoding='utf-8') as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.split()
            where = f'{path}:{lineno}'
            if len(parts) != 2:
                raise ValueError(f'{where}: expected "relative/path.jpg '
                                 f'label", got {line.strip()!r}')
            try:
                label = int(parts[1])
            except ValueError:
                raise ValueError(f'{where}: label must be an integer, got '
                                 f'{parts[1]!r}') from None
            if not 0 <= label < num_classes:
                raise ValueError(f'{where}: label {label} outside '
                                 f'0..{num_classes - 1} (num_classes='
                                 f'{num_classes})')
            img = osp.join(root, parts[0])
            if not osp.isfile(img):
                raise ValueError(f'{where}: image not found: {img}')
            data_list.append(dict(img_path=img, gt_label=label))
    return data_list


@DATASETS.register_module()
class VTAB1k(BaseDataset):
    """One VTAB-1K task, or a user's own task in the same layout.

    Args:
        data_root (str): Folder holding one sub-folder per task.
        task (str): One of ``VTAB1K_TASKS``, or the folder of another task
            in the same layout when ``num_classes`` (or ``classes``) is
            given.
        split (str): 'train800', 'val200', 'train800val200' or 'test'.
            Defaults to 'train800val200'.
        num_classes (int, optional): The class count of a task of your own,
            or an override of a VTAB task's (for small samples). Labels in
            the filelists must lie in ``[0, num_classes)``. Defaults to None:
            the VTAB task's, else ``len(classes)``.
        classes (str | Sequence[str], optional): Class names, or a text file
            with one per line; ``num_classes`` of them. Defaults to None:
            '0'..'K-1'.
        metainfo (dict, optional): Extra meta information; its ``classes``
            (if any) win over ``classes``. Defaults to None.
        **kwargs: Arguments of mmpretrain's BaseDataset (pipeline, ...).
    """

    def __init__(self,
                 data_root: str,
                 task: str,
                 split: str = 'train800val200',
                 num_classes: Optional[int] = None,
                 classes: Union[str, Sequence[str], None] = None,
                 metainfo: Optional[dict] = None,
                 **kwargs):
        if split not in VTAB1K_SPLITS:
            raise ValueError(f'split must be one of {VTAB1K_SPLITS}, got '
                             f'{split!r}')
        folder = osp.join(data_root, task)
        classes = read_classes(classes)
        num_classes = resolve_num_classes(num_classes, classes, VTAB1K_TASKS,
                                          task, 'task',
                                          'the 19 VTAB-1K tasks', folder)
        metainfo = check_classes(metainfo, classes, num_classes, task)
        metainfo.setdefault('classes', [str(i) for i in range(num_classes)])
        self.task, self.split, self.num_classes = task, split, num_classes
        super().__init__(
            ann_file=f'{split}.txt',
            data_root=folder,
            metainfo=metainfo,
            **kwargs)

    def load_data_list(self):
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(
                f'VTAB-1K {self.task} filelist not found: {self.ann_file}')
        return parse_filelist(self.ann_file, self.data_root, self.num_classes)
