from .batch import apply_total_batch_size, resolve_total_batch_size
from .checkpoint_safety import (mmengine_checkpoint_globals,
                                register_checkpoint_safe_globals)
from .cli import apply_train_flags, config_not_found, enable_tta
from .io import atomic_torch_save
from .launch import (adapt_cfg_to_device, add_preflight_args, build_runner,
                     distributed_session, enable_amp, enable_visualization,
                     end_distributed, failed_image, init_cpu_distributed,
                     init_distributed, load_cli_config, log_device_changes)
from .preflight import PreflightError, preflight, preflight_once
from .version_check import check_versions

__all__ = [
    'check_versions', 'mmengine_checkpoint_globals',
    'register_checkpoint_safe_globals', 'adapt_cfg_to_device', 'enable_amp',
    'init_cpu_distributed', 'init_distributed', 'end_distributed',
    'distributed_session', 'failed_image', 'log_device_changes',
    'enable_visualization', 'PreflightError', 'preflight', 'preflight_once',
    'atomic_torch_save', 'load_cli_config', 'build_runner',
    'add_preflight_args', 'apply_total_batch_size',
    'resolve_total_batch_size', 'apply_train_flags', 'config_not_found',
    'enable_tta'
]
