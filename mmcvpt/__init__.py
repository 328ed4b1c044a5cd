from .utils import check_versions, register_checkpoint_safe_globals
from .version import __version__, version_info

check_versions()
register_checkpoint_safe_globals()

# Importing the subpackages registers their modules in the mm* registries.
from . import datasets, engine, models  # noqa: E402,F401

__all__ = ['__version__', 'version_info', 'check_versions']
