"""Let ``_base_ = ['mmcvpt::dir/file.py']`` resolve, as ``mmseg::`` does.

mmengine 0.10.7 resolves ``pkg::dir/file.py`` only for a ``pkg`` in its
``MODULE2PACKAGE`` table, under ``<installed package>/.mim/configs`` (which
setup.py fills with configs/). The table is read when a config is parsed,
so ``import mmcvpt`` must come before ``Config.fromfile``.
"""
SCOPE = 'mmcvpt'
# The table's value is what mmengine's ``get_installed_path`` looks up. For
# a distribution name it returns ``<dist location>/<name>``: site-packages
# for an editable (PEP 660) install, where mmcvpt is not. A module name
# that is no distribution makes it return the folder of
# ``importlib.util.find_spec(name).origin`` instead: mmcvpt/version.py's
# folder, i.e. the mmcvpt that is imported, wheel or checkout alike.
PACKAGE = 'mmcvpt.version'


def register_config_scope() -> None:
    """Add ``mmcvpt`` to mmengine's ``MODULE2PACKAGE``; nothing else."""
    from mmengine.config.utils import MODULE2PACKAGE
    MODULE2PACKAGE.setdefault(SCOPE, PACKAGE)
