from .param_report_hook import TrainableParamReportHook

__all__ = ['TrainableParamReportHook']
