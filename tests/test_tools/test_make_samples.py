import filecmp
import os

import cv2
import numpy as np

from tests.sample_fixtures import make_samples


def _size(path):
    return sum(f.stat().st_size for f in path.rglob('*') if f.is_file())


def test_deterministic_and_small(tmp_path):
    a = tmp_path / 'a'
    b = tmp_path / 'b'
    make_samples.main(['all', '--out', str(a)])
    make_samples.main(['all', '--out', str(b)])
    for name in ('ade20k', 'vtab1k', 'fgvc'):
        cmp = filecmp.dircmp(a / name, b / name)
        files = [
            str(p.relative_to(a)) for p in (a / name).rglob('*')
            if p.is_file()
        ]
        assert files
        for rel in files:
            assert filecmp.cmp(a / rel, b / rel, shallow=False), rel
        assert not cmp.left_only and not cmp.right_only
    assert _size(a / 'ade20k') <= 2 * 2**20
    assert _size(a / 'vtab1k') + _size(a / 'fgvc') <= 2**20


def test_ade_labels_and_pairs(tmp_path):
    root = make_samples.make('ade20k', str(tmp_path))
    for split in ('training', 'validation'):
        images = sorted(os.listdir(f'{root}/images/{split}'))
        annos = sorted(os.listdir(f'{root}/annotations/{split}'))
        assert [i[:-4] for i in images] == [a[:-4] for a in annos]
        for anno in annos:
            label = cv2.imread(f'{root}/annotations/{split}/{anno}',
                               cv2.IMREAD_UNCHANGED)
            assert label.dtype == np.uint8 and label.max() <= 150
            assert (label == 0).any() and len(np.unique(label)) >= 3


def test_incomplete_output_is_rebuilt(tmp_path):
    root = make_samples.make('vtab1k', str(tmp_path))
    os.remove(f'{root}/.complete')
    os.remove(f'{root}/cifar/test.txt')  # a half-written earlier run
    assert make_samples.make('vtab1k', str(tmp_path)) == root
    assert os.path.isfile(f'{root}/cifar/test.txt')
