from .utils.version_check import check_versions
from .version import __version__, version_info

check_versions()

# Importing the subpackages registers their modules in the mm* registries.
from . import engine, models  # noqa: E402,F401

__all__ = ['__version__', 'version_info', 'check_versions']
