"""Where mmcvpt meets the registries of the tasks it serves.

The backbones always go into mmpretrain's ``MODELS`` (classification; the
parent class is mmpretrain's) and into mmseg's only where mmseg is
installed, so that mmpretrain users need no mmseg. Without mmseg, a
segmentation config (``default_scope='mmseg'``) built by a plain
``Runner.from_cfg`` fails at its first registry look-up with one line
naming mmseg and its install, instead of mmengine's fallback to its own
registries and a KeyError for the first mmseg class.
"""
from mmengine.registry import Registry
from mmengine.registry import root as mmengine_root
from mmpretrain.registry import MODELS as PRETRAIN_MODELS

from ...utils.version_check import MMSEG_INSTALL, is_installed


def register_backbone(cls: type) -> type:
    """Register ``cls`` under its name in mmpretrain's and (if installed)
    mmseg's ``MODELS``; returns ``cls``."""
    PRETRAIN_MODELS.register_module(module=cls)
    if is_installed('mmseg'):
        from mmseg.registry import MODELS as SEG_MODELS
        SEG_MODELS.register_module(module=cls)
    return cls


class MissingScopeRegistry(Registry):
    """The child registry of a scope whose package is not installed: every
    look-up raises one ImportError line ending with ``hint``."""

    def __init__(self, parent: Registry, scope: str, hint: str):
        super().__init__(parent.name, parent=parent, scope=scope)
        self._hint = hint

    def get(self, key: str):
        raise ImportError(
            f'{key!r} is looked up in scope {self.scope!r} (a config with '
            f'default_scope={self.scope!r}) but {self.scope} is not '
            f'installed; {self._hint}')


def reserve_mmseg_scope() -> None:
    """Without mmseg, give each mmengine root registry a ``'mmseg'`` child
    that answers every look-up with the install line."""
    if is_installed('mmseg'):
        return
    hint = ('mmcvpt without it runs classification (mmpretrain) configs '
            'only; for segmentation: ' + MMSEG_INSTALL)
    for registry in vars(mmengine_root).values():
        if (isinstance(registry, Registry) and registry.parent is None
                and 'mmseg' not in registry.children):
            MissingScopeRegistry(registry, 'mmseg', hint)


reserve_mmseg_scope()
