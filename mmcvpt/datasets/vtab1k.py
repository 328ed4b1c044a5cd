"""VTAB-1K in NOAH's filelist layout.

``<data_root>/<task>/{train800,val200,train800val200,test}.txt``, each line
``relative/path.jpg label`` with paths relative to ``<data_root>/<task>``.
"""
import os.path as osp

from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS

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
    """One VTAB-1K task.

    Args:
        data_root (str): Folder holding one sub-folder per task.
        task (str): One of ``VTAB1K_TASKS``, or the folder of another task
            in the same layout when ``num_classes`` is given.
        split (str): 'train800', 'val200', 'train800val200' or 'test'.
            Defaults to 'train800val200'.
        num_classes (int, optional): Override the task's class count (for
            small samples). Defaults to None.
        metainfo (dict, optional): Extra meta information; its ``classes``
            (if any) must have ``num_classes`` names. Defaults to None.
        **kwargs: Arguments of mmpretrain's BaseDataset (pipeline, ...).
    """

    def __init__(self,
                 data_root: str,
                 task: str,
                 split: str = 'train800val200',
                 num_classes: int = None,
                 metainfo: dict = None,
                 **kwargs):
        if task not in VTAB1K_TASKS and num_classes is None:
            raise ValueError(f'task must be one of {sorted(VTAB1K_TASKS)}, '
                             f'got {task!r} (another task in this layout '
                             'needs num_classes)')
        if split not in VTAB1K_SPLITS:
            raise ValueError(f'split must be one of {VTAB1K_SPLITS}, got '
                             f'{split!r}')
        if num_classes is None:
            num_classes = VTAB1K_TASKS[task][0]
        elif not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f'num_classes must be a positive integer, got '
                             f'{num_classes!r}')
        # Class names default to '0'..'K-1'; the user's metainfo wins.
        metainfo = {
            'classes': [str(i) for i in range(num_classes)],
            **(metainfo or {})
        }
        if len(metainfo['classes']) != num_classes:
            raise ValueError(f'metainfo has {len(metainfo["classes"])} '
                             f'classes, {task} has {num_classes}')
        self.task, self.split, self.num_classes = task, split, num_classes
        super().__init__(
            ann_file=f'{split}.txt',
            data_root=osp.join(data_root, task),
            metainfo=metainfo,
            **kwargs)

    def load_data_list(self):
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(
                f'VTAB-1K {self.task} filelist not found: {self.ann_file}')
        return parse_filelist(self.ann_file, self.data_root, self.num_classes)
