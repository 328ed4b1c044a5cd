from .param_report_hook import TrainableParamReportHook
from .peft_checkpoint_hook import PEFTCheckpointHook
from .rng_state_hook import RNGStateHook

__all__ = ['TrainableParamReportHook', 'PEFTCheckpointHook', 'RNGStateHook']
