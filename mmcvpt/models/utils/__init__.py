from .param_report import trainable_parameter_report

__all__ = ['trainable_parameter_report']
