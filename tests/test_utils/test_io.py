import os

import pytest
import torch

from mmcvpt.utils import atomic_torch_save


def test_writes_and_creates_folder(tmp_path):
    path = tmp_path / 'a/b/ckpt.pth'
    atomic_torch_save({'w': torch.arange(3)}, str(path))
    assert torch.equal(torch.load(path, weights_only=True)['w'],
                       torch.arange(3))
    assert os.listdir(path.parent) == ['ckpt.pth']


def test_failed_save_leaves_nothing_and_keeps_old_file(tmp_path):
    path = tmp_path / 'ckpt.pth'
    atomic_torch_save({'w': torch.ones(2)}, str(path))
    with pytest.raises(Exception):
        atomic_torch_save({'w': lambda: None}, str(path))  # not picklable
    assert os.listdir(tmp_path) == ['ckpt.pth']
    assert torch.equal(torch.load(path, weights_only=True)['w'], torch.ones(2))


@pytest.mark.parametrize('umask', [0o022, 0o077])
def test_file_mode_follows_the_umask(tmp_path, umask):
    path = tmp_path / 'ckpt.pth'
    old = os.umask(umask)
    try:
        atomic_torch_save({'w': torch.ones(1)}, str(path))
        with open(tmp_path / 'plain', 'w'):
            pass
    finally:
        os.umask(old)
    mode = path.stat().st_mode & 0o777
    assert mode == 0o666 & ~umask == (tmp_path / 'plain').stat().st_mode & 0o777
