from .param_report_hook import TrainableParamReportHook
from .preemption_hook import PreemptionHook
from .rng_state_hook import RNGStateHook

__all__ = ['TrainableParamReportHook', 'PreemptionHook', 'RNGStateHook']
