from .checkpoint_safety import (mmengine_checkpoint_globals,
                                register_checkpoint_safe_globals)
from .config_scope import register_config_scope
from .io import atomic_torch_save
from .version_check import check_versions

__all__ = [
    'check_versions', 'mmengine_checkpoint_globals',
    'register_checkpoint_safe_globals', 'atomic_torch_save',
    'register_config_scope'
]
