"""File writing helpers."""
import os
import os.path as osp
import tempfile

import torch


def atomic_torch_save(obj, path: str) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename.

    A failure (full disk, interrupt) never leaves half a checkpoint at
    ``path``; the folder is created if needed. The file gets the mode a
    plain ``open`` would give (0666 minus the umask), like mmengine's
    checkpoints, not mkstemp's private 0600.
    """
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix='.tmp')
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
