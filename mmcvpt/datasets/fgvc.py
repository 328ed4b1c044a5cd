"""FGVC datasets with VPT's json splits.

``<data_root>/{train,val,test}.json``, each an object mapping an image path
(relative to the dataset's image folder) to its label. Labels are mapped to
0..K-1 in sorted order of train.json's labels. (VPT sorts each split's own
labels: the same map when every split holds every class, as in the released
splits, and one that stays consistent across splits when they do not.)
A dataset of your own in this layout works with ``num_classes``.
"""
import json
import os.path as osp
from typing import Optional, Sequence, Union

from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS

from .utils import check_classes, read_classes, resolve_num_classes

# dataset -> (number of classes, image folder inside data_root)
FGVC_DATASETS = {
    'CUB_200_2011': (200, 'images'),
    'NABirds': (555, 'images'),
    'OxfordFlowers': (102, ''),
    'StanfordDogs': (120, 'Images'),
    'StanfordCars': (196, ''),
}
FGVC_SPLITS = ('train', 'val', 'trainval', 'test')


def _read_json(path):
    """Read one split file -> {image path: int label}; errors name the file
    and the offending key."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'FGVC split file not found: {path}')
    with open(path, encoding='utf-8') as f:
        try:
            anno = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f'{path}: not valid json ({e})') from None
    if not isinstance(anno, dict):
        raise ValueError(f'{path}: expected an object mapping image path to '
                         f'label, got {type(anno).__name__}')
    for key, value in anno.items():
        # bool is an int subclass; a true/false label is a mistake
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f'{path}: label of {key!r} must be an integer, '
                             f'got {value!r}')
    return anno


@DATASETS.register_module()
class FGVC(BaseDataset):
    """One of VPT's five FGVC datasets, or a user's own in the same layout.

    Args:
        data_root (str): The dataset folder (holding the json files).
        dataset (str): One of ``FGVC_DATASETS``, or the name of your own
            dataset when ``num_classes`` (or ``classes``) is given.
        split (str): 'train', 'val', 'trainval' (train + val, for final
            runs) or 'test'. Defaults to 'train'.
        num_classes (int, optional): The class count of a dataset of your
            own, or an override of a known one's. train.json may hold at
            most this many distinct labels. Defaults to None: the known
            dataset's, else ``len(classes)``.
        classes (str | Sequence[str], optional): Class names in the order
            of train.json's sorted labels, or a text file with one per
            line; ``num_classes`` of them. Defaults to None: the labels
            as written in train.json.
        metainfo (dict, optional): Extra meta information; its ``classes``
            (if any) win over ``classes``. Defaults to None.
        data_prefix (str, optional): The image folder inside ``data_root``
            that the json keys are relative to. Defaults to None: the known
            dataset's (``FGVC_DATASETS``), else ``data_root`` itself.
        **kwargs: Arguments of mmpretrain's BaseDataset.
    """

    def __init__(self,
                 data_root: str,
                 dataset: str,
                 split: str = 'train',
                 num_classes: Optional[int] = None,
                 classes: Union[str, Sequence[str], None] = None,
                 metainfo: Optional[dict] = None,
                 data_prefix: Optional[str] = None,
                 **kwargs):
        if split not in FGVC_SPLITS:
            raise ValueError(f'split must be one of {FGVC_SPLITS}, got '
                             f'{split!r}')
        classes = read_classes(classes)
        self.num_classes = resolve_num_classes(
            num_classes, classes, FGVC_DATASETS, dataset, 'dataset',
            "VPT's 5 FGVC datasets", data_root)
        metainfo = check_classes(metainfo, classes, self.num_classes,
                                 dataset)
        if data_prefix is None:
            data_prefix = FGVC_DATASETS.get(dataset, (0, ''))[1]
        self.dataset, self.split = dataset, split
        super().__init__(
            ann_file='',
            data_root=data_root,
            metainfo=metainfo,
            data_prefix=data_prefix,
            **kwargs)

    def load_data_list(self):
        train_file = osp.join(self.data_root, 'train.json')
        train = _read_json(train_file)
        class_ids = sorted(set(train.values()))
        if len(class_ids) > self.num_classes:
            extra = class_ids[self.num_classes]
            key = next(k for k, v in train.items() if v == extra)
            raise ValueError(
                f'{train_file}: {len(class_ids)} distinct labels, '
                f'{self.dataset} has num_classes={self.num_classes} (labels '
                f'map to 0..{self.num_classes - 1} in sorted order; '
                f'{key!r} has label {extra!r}, the first beyond)')
        label_map = {v: i for i, v in enumerate(class_ids)}
        self._metainfo.setdefault('classes', [str(v) for v in class_ids])
        names = ['train', 'val'] if self.split == 'trainval' else [self.split]
        image_root = self.data_prefix['img_path'] or self.data_root
        data_list = []
        for name in names:
            path = osp.join(self.data_root, f'{name}.json')
            anno = train if name == 'train' else _read_json(path)
            for key, value in anno.items():
                if value not in label_map:
                    raise ValueError(f'{path}: {key!r} has label {value!r}, '
                                     'which train.json does not contain')
                img = osp.join(image_root, key)
                if not osp.isfile(img):
                    raise ValueError(f'{path}: {key!r}: image not found: '
                                     f'{img}')
                data_list.append(dict(img_path=img, gt_label=label_map[value]))
        return data_list
