import logging

import torch.nn as nn
from mmengine.logging import MMLogger
from mmengine.optim import DefaultOptimWrapperConstructor

from mmcvpt.engine import PEFTOptimWrapperConstructor


class _Model(nn.Module):

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8))
        self.backbone.requires_grad_(False)
        self.prompts = nn.Parameter(nn.init.normal_(nn.Parameter(
            self.backbone[0].weight.new_empty(3, 8))))
        self.head = nn.Sequential(nn.Linear(8, 4), nn.BatchNorm1d(4))


CFG = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4))
PARAMWISE = dict(custom_keys={'head': dict(lr_mult=10.)})


class _Capture(logging.Handler):

    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def _build(constructor, model):
    logger = MMLogger.get_instance('test_peft_constructor')
    capture = _Capture()
    logger.addHandler(capture)
    try:
        wrapper = constructor(CFG, PARAMWISE)(model)
    finally:
        logger.removeHandler(capture)
    return wrapper.optimizer, capture.lines


def _groups(optimizer, model):
    names = {id(p): n for n, p in model.named_parameters()}
    return {
        names[id(p)]: {k: v
                       for k, v in g.items() if k != 'params'}
        for g in optimizer.param_groups for p in g['params']
    }


def test_same_groups_one_line_per_setting():
    model = _Model()
    default, default_lines = _build(DefaultOptimWrapperConstructor, model)
    ours, lines = _build(PEFTOptimWrapperConstructor, model)
    assert _groups(ours, model) == _groups(default, model)
    # the default: a warning per frozen tensor (4) + lr/wd/lr_mult per head
    # tensor (4 x 3); ours: none of them, one summary line per setting
    per_tensor = [
        line for line in default_lines
        if 'is skipped since' in line or line.startswith('paramwise_options')
    ]
    assert len(per_tensor) == 4 + 4 * 3
    assert not set(per_tensor) & set(lines)
    assert [line for line in lines if line.startswith('optimizer ')] == [
        'optimizer SGD: 1 trainable tensors (0.00M) lr=0.01 '
        'weight_decay=0.0001',
        'optimizer SGD: 4 trainable tensors (0.00M) lr=0.1 lr_mult=10 '
        'weight_decay=0.0001',
        'optimizer SGD: 4 frozen tensors (0.00M), never updated '
        '(requires_grad=False)',
    ]


def test_logger_left_as_it_was():
    model = _Model()
    logger = MMLogger.get_instance('test_peft_constructor')
    before = list(logger.filters)
    _build(PEFTOptimWrapperConstructor, model)
    assert logger.filters == before
