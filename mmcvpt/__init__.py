# The version check comes first: nothing above it imports mmseg, mmpretrain
# or mmcv (mmcvpt.utils imports only torch and numpy).
from .utils.version_check import check_versions

check_versions()

from .utils import (register_checkpoint_safe_globals,  # noqa: E402
                    register_config_scope)
from .version import __version__, version_info  # noqa: E402

register_checkpoint_safe_globals()
register_config_scope()  # `mmcvpt::` config paths (utils/config_scope.py)

# Importing the subpackages registers their modules in the mm* registries.
# The tools' launch glue (mmcvpt.launch) is not among them.
from . import datasets, engine, models, peft  # noqa: E402,F401

__all__ = ['__version__', 'version_info', 'check_versions']
