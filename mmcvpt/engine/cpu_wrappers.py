"""Model and optimizer wrappers for machines without CUDA."""
from contextlib import contextmanager

import torch
from mmengine.model import MMDistributedDataParallel
from mmengine.optim import OptimWrapper
from mmengine.registry import MODEL_WRAPPERS, OPTIM_WRAPPERS


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """mmengine's DDP wrapper for CPU modules (gloo).

    mmengine's Runner passes ``device_ids=[LOCAL_RANK]``, which DDP rejects
    for a module on the CPU; CPU modules need ``device_ids=None``.
    """

    def __init__(self, module, device_ids=None, **kwargs):
        super().__init__(module=module, device_ids=None, **kwargs)


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(OptimWrapper):
    """Mixed precision on the CPU: bfloat16 autocast in the training forward.

    mmengine's AmpOptimWrapper needs CUDA and CPU autocast supports bf16
    only; bf16 keeps fp32's exponent range, so no loss scaling is needed.
    """

    def __init__(self, *args, loss_scale=None, dtype=None, **kwargs):
        # loss_scale/dtype come from AmpOptimWrapper configs; bf16 needs none.
        super().__init__(*args, **kwargs)

    @contextmanager
    def optim_context(self, model):
        with super().optim_context(model), torch.autocast(
                'cpu', dtype=torch.bfloat16):
            yield
