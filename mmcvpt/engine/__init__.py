from .cpu_wrappers import CPUAmpOptimWrapper, CPUDistributedDataParallel
from .hooks import *  # noqa: F401,F403
from .optimizers import PEFTOptimWrapperConstructor

__all__ = [
    'CPUAmpOptimWrapper', 'CPUDistributedDataParallel',
    'PEFTOptimWrapperConstructor'
]
