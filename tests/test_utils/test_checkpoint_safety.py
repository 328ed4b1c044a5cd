import os
import pickle
import zipfile

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner import load_checkpoint
from mmengine.runner.checkpoint import _load_checkpoint

import mmcvpt  # noqa: F401  registers the allow-list


def _mmengine_like_checkpoint():
    buf = HistoryBuffer()
    buf.update(1.5)
    buf.update(np.float64(2.5))
    return dict(
        meta=dict(epoch=1, iter=2, seed=np.int64(0)),
        state_dict=dict(weight=torch.ones(2, 2)),
        message_hub=dict(
            log_scalars=dict(loss=buf),
            runtime_info=dict(
                arr=np.arange(3, dtype=np.int32), f=np.float32(0.5))))


def test_mmengine_objects_load(tmp_path):
    path = tmp_path / 'ckpt.pth'
    torch.save(_mmengine_like_checkpoint(), path)
    ckpt = _load_checkpoint(str(path), map_location='cpu')
    buf = ckpt['message_hub']['log_scalars']['loss']
    assert isinstance(buf, HistoryBuffer) and buf.mean() == 2.0
    assert ckpt['message_hub']['runtime_info']['arr'].tolist() == [0, 1, 2]
    model = torch.nn.Linear(2, 2, bias=False)
    load_checkpoint(model, str(path), map_location='cpu')
    assert torch.equal(model.weight, torch.ones(2, 2))


class _Evil:

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return os.system, (f'touch {self.target}', )


class _EvilExec:
    """torch refuses ``os``/``posix`` globals even when allow-listed; a
    builtin such as ``exec`` is refused only while nobody allows it."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return exec, (f'open({str(self.target)!r}, "w").close()', )


class _EvilThroughGetattr:
    """``getattr`` is allow-listed (HistoryBuffer needs it): a method it
    reaches on an allow-listed class must still not be callable. Pickled as
    ``getattr(numpy.ndarray, 'tofile')(array, path)``."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return np.ndarray.tofile, (np.arange(3), str(self.target))


def test_plain_torch_load_refuses_a_disallowed_global(tmp_path):
    """With mmcvpt imported, torch.load's own default (no weights_only
    argument, as mmengine calls it) is still the safe unpickler."""
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save(dict(state_dict={}, payload=_EvilExec(marker)), path)
    with pytest.raises(
            pickle.UnpicklingError,
            match=r'(?s)Weights only load failed.*GLOBAL exec was not'):
        torch.load(path)
    assert not marker.exists()


def test_allow_listed_getattr_calls_nothing(tmp_path):
    marker = tmp_path / 'written'
    path = tmp_path / 'evil.pth'
    torch.save(dict(payload=_EvilThroughGetattr(marker)), path)
    with pytest.raises(
            pickle.UnpicklingError,
            match=r"(?s)unrecognized function <method 'tofile'"):
        torch.load(path)
    with pytest.raises(pickle.UnpicklingError):
        _load_checkpoint(str(path), map_location='cpu')
    assert not marker.exists()


def test_disallowed_callable_is_refused(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save(dict(state_dict={}, payload=_Evil(marker)), path)
    with pytest.raises(
            Exception,
            match=r'(?s)Weights only load failed.*GLOBAL posix\.system'):
        _load_checkpoint(str(path), map_location='cpu')
    with pytest.raises(Exception, match='Weights only load failed'):
        load_checkpoint(torch.nn.Linear(1, 1), str(path), map_location='cpu')
    assert not marker.exists()


def test_numpy1_names_load(tmp_path):
    """A checkpoint pickled under numpy 1.x names numpy.core.multiarray."""
    new = tmp_path / 'np2.pth'
    torch.save(_mmengine_like_checkpoint(), new)
    old = tmp_path / 'np1.pth'
    renamed = 0
    with zipfile.ZipFile(new) as src, zipfile.ZipFile(old, 'w') as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith('data.pkl'):
                # Protocol-2 GLOBAL opcodes: 'c' module '\n' name '\n'.
                renamed = data.count(b'cnumpy._core.multiarray\n')
                data = data.replace(b'cnumpy._core.multiarray\n',
                                    b'cnumpy.core.multiarray\n')
            dst.writestr(item, data)
    assert renamed > 0
    ckpt = _load_checkpoint(str(old), map_location='cpu')
    assert ckpt['meta']['seed'] == 0
    assert ckpt['message_hub']['runtime_info']['arr'].tolist() == [0, 1, 2]
