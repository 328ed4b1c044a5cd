from types import SimpleNamespace

import torch.nn as nn
from mmengine.logging import MMLogger
from mmengine.registry import HOOKS


def test_logs_summary_before_train(capsys):
    import mmcvpt.engine  # noqa: F401  (registers the hook)
    hook = HOOKS.build(dict(type='TrainableParamReportHook'))
    model = nn.Sequential(nn.Linear(10, 10), nn.Linear(10, 2))
    model[0].requires_grad_(False)
    logger = MMLogger.get_instance('test_param_hook', log_level='INFO')
    hook.before_train(SimpleNamespace(model=model, logger=logger))
    out = capsys.readouterr().out
    assert 'trainable 0.00M / 0.00M (16.67%)' in out  # 22 of 132
    assert '1: trainable' in out
