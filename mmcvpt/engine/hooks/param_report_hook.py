from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from mmcvpt.models.utils import trainable_parameter_report


@HOOKS.register_module()
class TrainableParamReportHook(Hook):
    """Log ``trainable x / y (z%)`` once, when training starts.

    Args:
        per_module (bool): Also log a per-module breakdown. Defaults to True.
    """

    priority = 'VERY_LOW'

    def __init__(self, per_module: bool = True):
        self.per_module = per_module

    def before_train(self, runner) -> None:
        model = runner.model
        if is_model_wrapper(model):
            model = model.module
        trainable_parameter_report(
            model, per_module=self.per_module, logger=runner.logger)
