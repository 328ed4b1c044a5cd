from .param_report_hook import TrainableParamReportHook
from .rng_state_hook import RNGStateHook

__all__ = ['TrainableParamReportHook', 'RNGStateHook']
