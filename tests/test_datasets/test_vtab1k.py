import shutil

import pytest

import mmcvpt  # noqa: F401
from mmcvpt.datasets import VTAB1K_GROUPS, VTAB1K_TASKS, VTAB1k
from tests.sample_fixtures import make_samples


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    return make_samples.make('vtab1k', str(tmp_path_factory.mktemp('s')))


def test_splits(root):
    sizes = {
        s: len(VTAB1k(root, 'cifar', s, num_classes=4))
        for s in ('train800', 'val200', 'train800val200', 'test')
    }
    assert sizes == dict(train800=16, val200=8, train800val200=24, test=8)
    ds = VTAB1k(root, 'eurosat', 'test', num_classes=4)
    info = ds.get_data_info(0)
    assert info['img_path'].endswith('eurosat/images/test_0_0.jpg')
    assert info['gt_label'] == 0 and len(ds.metainfo['classes']) == 4


def test_task_table():
    assert len(VTAB1K_TASKS) == 19
    groups = [g for _, g in VTAB1K_TASKS.values()]
    assert [groups.count(g) for g in VTAB1K_GROUPS] == [7, 4, 8]
    assert VTAB1K_TASKS['sun397'][0] == 397


@pytest.fixture
def broken(root, tmp_path):
    dst = tmp_path / 'vtab'
    shutil.copytree(root, dst)
    return dst


@pytest.mark.parametrize('line,msg', [
    ('images/train800_0_0.jpg', r'train800\.txt:3: expected "relative/path'
     r'\.jpg label", got \'images/train800_0_0\.jpg\''),
    ('images/train800_0_0.jpg cat', r"train800\.txt:3: label must be an "
     r"integer, got 'cat'"),
    ('images/train800_0_0.jpg 7', r'train800\.txt:3: label 7 outside 0\.\.3'),
    ('images/missing.jpg 1', r'train800\.txt:3: image not found: .*'
     r'images/missing\.jpg'),
])
def test_malformed_lines(broken, line, msg):
    path = broken / 'cifar/train800.txt'
    lines = path.read_text().splitlines()
    lines[2] = line
    path.write_text('\n'.join(lines) + '\n')
    with pytest.raises(ValueError, match=msg):
        VTAB1k(str(broken), 'cifar', 'train800', num_classes=4)


def test_bad_arguments(root, tmp_path):
    with pytest.raises(
            ValueError, match=r"^task 'cifar10' is not one of the 19 VTAB-1K "
            r"tasks \(did you mean 'cifar'\?\): for your own data in this "
            r'layout, read from .*/cifar10 \(not found\), set num_classes='):
        VTAB1k(root, 'cifar10')
    with pytest.raises(
            ValueError, match=r"split must be one of .*got "
            r"'train1000'"):
        VTAB1k(root, 'cifar', 'train1000')
    with pytest.raises(
            FileNotFoundError,
            match=r'VTAB-1K dtd filelist not '
            r'found: .*dtd/test\.txt'):
        VTAB1k(root, 'dtd', 'test')


def test_num_classes_and_metainfo(root):
    with pytest.raises(
            ValueError, match=r'num_classes must be a positive '
            r'integer, got 0'):
        VTAB1k(root, 'cifar', 'test', num_classes=0)
    ds = VTAB1k(
        root,
        'cifar',
        'test',
        metainfo=dict(classes=list('abcd')),
        num_classes=4)
    assert list(ds.metainfo['classes']) == ['a', 'b', 'c', 'd']
    with pytest.raises(
            ValueError, match=r'^metainfo has 2 names, cifar '
            r'has num_classes=4$'):
        VTAB1k(
            root,
            'cifar',
            'test',
            metainfo=dict(classes=['a', 'b']),
            num_classes=4)
    # the real class count is the default: the sample's labels fit in it
    assert len(VTAB1k(root, 'cifar', 'test').metainfo['classes']) == 100


def test_blank_lines_and_pipeline(broken):
    from mmpretrain.registry import DATASETS
    path = broken / 'cifar/test.txt'
    path.write_text('\n' + path.read_text() + '\n\n')
    ds = DATASETS.build(
        dict(
            type='VTAB1k',
            data_root=str(broken),
            task='cifar',
            split='test',
            num_classes=4,
            pipeline=[dict(type='LoadImageFromFile'),
                      dict(type='PackInputs')]))
    assert len(ds) == 8
    assert tuple(ds[0]['inputs'].shape) == (3, 64, 64)
