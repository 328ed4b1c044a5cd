"""Trainable-parameter totals of a model, for logs and tools."""
from collections import OrderedDict

import torch.nn as nn
from mmengine.logging import print_log


def _millions(n):
    return f'{n / 1e6:.2f}M'


def trainable_parameter_report(model: nn.Module,
                               per_module: bool = False,
                               depth: int = 1,
                               logger='current') -> dict:
    """Count trainable and total parameters and log a one-line summary.

    The summary reads ``trainable 0.09M / 85.9M (0.11%)``. Parameters shared
    between modules are counted once.

    Args:
        model (nn.Module): The model.
        per_module (bool): Also log a per-module breakdown. Defaults to False.
        depth (int): Name depth of the breakdown's modules (1 groups by
            top-level child, e.g. ``backbone``). Defaults to 1.
        logger (str | Logger, optional): Passed to mmengine's ``print_log``;
            None only returns. Defaults to 'current'.

    Returns:
        dict: ``trainable``, ``total``, ``ratio`` and ``modules`` (an ordered
        dict name -> (trainable, total)).
    """
    trainable = total = 0
    modules = OrderedDict()
    for name, param in model.named_parameters():  # de-duplicated by torch
        group = '.'.join(name.split('.')[:depth])
        t, n = modules.get(group, (0, 0))
        grad = param.numel() if param.requires_grad else 0
        modules[group] = (t + grad, n + param.numel())
        trainable += grad
        total += param.numel()
    ratio = trainable / total if total else 0.0
    summary = (f'trainable {_millions(trainable)} / {_millions(total)} '
               f'({ratio:.2%})')
    if logger is not None:
        print_log(summary, logger=logger)
        if per_module:
            for group, (t, n) in modules.items():
                print_log(
                    f'  {group}: trainable {_millions(t)} / '
                    f'{_millions(n)}',
                    logger=logger)
    return dict(
        trainable=trainable,
        total=total,
        ratio=ratio,
        summary=summary,
        modules=modules)
