"""FGVC datasets with VPT's json splits.

``<data_root>/{train,val,test}.json``, each an object mapping an image path
(relative to the dataset's image folder) to its label. Labels are mapped to
0..K-1 in sorted order of train.json's labels. (VPT sorts each split's own
labels: the same map when every split holds every class, as in the released
splits, and one that stays consistent across splits when they do not.)
"""
import json
import os.path as osp

from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS

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
    """One of VPT's five FGVC datasets.

    Args:
        data_root (str): The dataset folder (holding the json files).
        dataset (str): One of ``FGVC_DATASETS``.
        split (str): 'train', 'val', 'trainval' (train + val, for final
            runs) or 'test'. Defaults to 'train'.
        **kwargs: Arguments of mmpretrain's BaseDataset.
    """

    def __init__(self,
                 data_root: str,
                 dataset: str,
                 split: str = 'train',
                 **kwargs):
        if dataset not in FGVC_DATASETS:
            raise ValueError(f'dataset must be one of '
                             f'{sorted(FGVC_DATASETS)}, got {dataset!r}')
        if split not in FGVC_SPLITS:
            raise ValueError(f'split must be one of {FGVC_SPLITS}, got '
                             f'{split!r}')
        self.dataset, self.split = dataset, split
        super().__init__(ann_file='', data_root=data_root, **kwargs)

    def load_data_list(self):
        train_file = osp.join(self.data_root, 'train.json')
        class_ids = sorted(set(_read_json(train_file).values()))
        num_classes = FGVC_DATASETS[self.dataset][0]
        if len(class_ids) > num_classes:
            raise ValueError(f'{train_file}: {len(class_ids)} distinct '
                             f'labels, {self.dataset} has {num_classes}')
        label_map = {v: i for i, v in enumerate(class_ids)}
        self._metainfo.setdefault('classes', [str(v) for v in class_ids])
        names = ['train', 'val'] if self.split == 'trainval' else [self.split]
        image_root = osp.join(self.data_root, FGVC_DATASETS[self.dataset][1])
        data_list = []
        for name in names:
            path = osp.join(self.data_root, f'{name}.json')
            for key, value in _read_json(path).items():
                if value not in label_map:
                    raise ValueError(f'{path}: {key!r} has label {value!r}, '
                                     'which train.json does not contain')
                img = osp.join(image_root, key)
                if not osp.isfile(img):
                    raise ValueError(f'{path}: {key!r}: image not found: '
                                     f'{img}')
                data_list.append(dict(img_path=img, gt_label=label_map[value]))
        return data_list
