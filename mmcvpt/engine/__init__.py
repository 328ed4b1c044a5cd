from .cpu_wrappers import CPUAmpOptimWrapper, CPUDistributedDataParallel
from .hooks import *  # noqa: F401,F403
from .optimizers import PEFTOptimWrapperConstructor
from .peft_checkpoint import (load_peft_checkpoint, peft_path,
                              save_peft_checkpoint, tuned_state_dict)

__all__ = [
    'CPUAmpOptimWrapper', 'CPUDistributedDataParallel', 'load_peft_checkpoint',
    'peft_path', 'save_peft_checkpoint', 'tuned_state_dict',
    'PEFTOptimWrapperConstructor'
]
