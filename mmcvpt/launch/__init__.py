"""What tools/train.py and tools/test.py do around a config: fit it to the
machine, start and end the process group, check the total batch and the
inputs before anything is built, and turn the user's mistakes into one line.

Not imported by ``import mmcvpt`` (nor by configs' ``custom_imports``): a
library user who builds models from configs never loads it.
"""
from .batch import check_total_batch_size
from .cli import (add_launch_args, apply_train_flags, config_not_found,
                  enable_tta, enable_visualization, load_cli_config,
                  parse_launch_args)
from .device import (adapt_cfg_to_device, enable_amp, log_device_changes,
                     select_device)
from .distributed import (end_distributed, init_cpu_distributed,
                          init_distributed)
from .errors import build_error, failed_image, peer_lost
from .preflight import PreflightError, preflight, preflight_once
from .runner import build_runner
from .session import distributed_session

__all__ = [
    'check_total_batch_size', 'add_launch_args', 'parse_launch_args',
    'apply_train_flags', 'config_not_found',
    'enable_tta', 'enable_visualization', 'load_cli_config',
    'adapt_cfg_to_device', 'enable_amp', 'log_device_changes', 'select_device',
    'end_distributed', 'init_cpu_distributed', 'init_distributed',
    'build_error', 'failed_image', 'peer_lost', 'PreflightError',
    'preflight', 'preflight_once', 'build_runner', 'distributed_session'
]
