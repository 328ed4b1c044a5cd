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
