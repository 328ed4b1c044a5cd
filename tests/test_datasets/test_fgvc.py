import json
import shutil

import pytest

import mmcvpt  # noqa: F401
from mmcvpt.datasets import FGVC
from tests.sample_fixtures import make_samples


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    base = make_samples.make('fgvc', str(tmp_path_factory.mktemp('s')))
    return f'{base}/CUB_200_2011'


def test_splits_and_labels(root):
    sizes = {
        s: len(FGVC(root, 'CUB_200_2011', s))
        for s in ('train', 'val', 'trainval', 'test')
    }
    assert sizes == dict(train=12, val=4, trainval=16, test=8)
    ds = FGVC(root, 'CUB_200_2011', 'test')
    labels = sorted({ds.get_data_info(i)['gt_label'] for i in range(8)})
    assert labels == [0, 1, 2, 3]  # json labels 1..4 -> 0..3
    assert ds.get_data_info(0)['img_path'].startswith(f'{root}/images/')


def _edit(root, tmp_path, split, fn):
    dst = tmp_path / 'cub'
    shutil.copytree(root, dst)
    path = dst / f'{split}.json'
    anno = json.loads(path.read_text())
    fn(anno)
    path.write_text(json.dumps(anno))
    return str(dst)


def test_label_not_in_train(root, tmp_path):
    dst = _edit(root, tmp_path, 'test',
                lambda a: a.update({next(iter(a)): 99}))
    with pytest.raises(
            ValueError,
            match=r"test\.json: '.*' has label 99, "
            r'which train\.json does not contain'):
        FGVC(dst, 'CUB_200_2011', 'test')


def test_missing_image(root, tmp_path):
    dst = _edit(root, tmp_path, 'val', lambda a: a.update({'x/y.jpg': 1}))
    with pytest.raises(
            ValueError,
            match=r"val\.json: 'x/y\.jpg': image not "
            r'found: .*images/x/y\.jpg'):
        FGVC(dst, 'CUB_200_2011', 'val')


def test_bad_arguments(root):
    with pytest.raises(
            ValueError, match=r"^dataset 'CUB' is not one of VPT's 5 FGVC "
            r'datasets: for your own data in this layout, read from '
            r'.*/CUB_200_2011, set num_classes=<number of classes>$'):
        FGVC(root, 'CUB')
    with pytest.raises(ValueError, match="split must be one of"):
        FGVC(root, 'CUB_200_2011', 'all')
    with pytest.raises(
            FileNotFoundError,
            match=r'FGVC split file not found'
            r': .*/nowhere/train\.json'):
        FGVC(f'{root}/nowhere', 'CUB_200_2011', 'train')


@pytest.mark.parametrize('label', ['3', 2.0, True])
def test_non_integer_label(root, tmp_path, label):
    dst = _edit(root, tmp_path, 'val', lambda a: a.update({'x/y.jpg': label}))
    with pytest.raises(
            ValueError,
            match=r"val\.json: label of 'x/y\.jpg' must be an "
            r'integer, got'):
        FGVC(dst, 'CUB_200_2011', 'trainval')


def test_bad_json(root, tmp_path):
    dst = _edit(root, tmp_path, 'test', lambda a: None)
    (tmp_path / 'cub/test.json').write_text('{"a.jpg": 1,')
    with pytest.raises(ValueError, match=r'test\.json: not valid json'):
        FGVC(dst, 'CUB_200_2011', 'test')
    (tmp_path / 'cub/test.json').write_text('[["a.jpg", 1]]')
    with pytest.raises(
            ValueError, match=r'test\.json: expected an object .* got list'):
        FGVC(dst, 'CUB_200_2011', 'test')


def test_more_classes_than_dataset(root, tmp_path):
    dst = _edit(root, tmp_path, 'train',
                lambda a: a.update({f'x/{i}.jpg': i
                                    for i in range(300)}))
    with pytest.raises(
            ValueError,
            match=r'train\.json: 300 distinct labels, '
            r'CUB_200_2011 has num_classes=200 \(labels map to 0\.\.199 in '
            r"sorted order; 'x/200\.jpg' has label 200, the first beyond\)$"):
        FGVC(dst, 'CUB_200_2011', 'train')
