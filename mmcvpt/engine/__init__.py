from .cpu_wrappers import CPUAmpOptimWrapper, CPUDistributedDataParallel
from .hooks import *  # noqa: F401,F403
from .optimizers import PEFTOptimWrapperConstructor
from .runners import *  # noqa: F401,F403

__all__ = [
    'CPUAmpOptimWrapper', 'CPUDistributedDataParallel',
    'PEFTOptimWrapperConstructor'
]
