"""Load mmengine checkpoints with torch's ``weights_only=True`` kept on.

torch >= 2.6 unpickles ``torch.load`` files with ``weights_only=True`` by
default, and mmengine 0.10.7 does not pass the argument, so every mmengine
checkpoint (resume, ``load_from``, ``init_model``) fails on the objects its
message hub stores. Instead of switching the safety off, allow exactly those
objects; anything else (e.g. a pickled ``os.system`` call) is still refused.
"""
import numpy as np
import torch


def _numpy_multiarray():
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray
    return multiarray


def mmengine_checkpoint_globals() -> list:
    """What mmengine checkpoints pickle beyond torch's own allow-list."""
    from mmengine.logging.history_buffer import HistoryBuffer
    multiarray = _numpy_multiarray()
    dtype_classes = {
        type(np.dtype(t))
        for t in (np.float64, np.float32, np.float16, np.int64, np.int32,
                  np.int16, np.int8, np.uint64, np.uint32, np.uint16, np.uint8,
                  np.bool_)
    }
    return [
        HistoryBuffer,
        # HistoryBuffer pickles its statistics methods as getattr(cls, name)
        getattr,
        np.ndarray,
        np.dtype,
        multiarray._reconstruct,
        multiarray.scalar,
        # checkpoints written under numpy 1.x name the same functions
        (multiarray._reconstruct, 'numpy.core.multiarray._reconstruct'),
        (multiarray.scalar, 'numpy.core.multiarray.scalar'),
        *sorted(dtype_classes, key=lambda c: c.__name__),
    ]


def register_checkpoint_safe_globals() -> None:
    """Add :func:`mmengine_checkpoint_globals` to torch's allow-list.

    Idempotent; ``weights_only`` itself is never changed.
    """
    torch.serialization.add_safe_globals(mmengine_checkpoint_globals())
