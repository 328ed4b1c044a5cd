"""The ``mmcvpt`` scope of mmengine's registry tree.

mmcvpt's modules live in the registries of the task they serve (mmseg's or
mmpretrain's ``MODELS``, mmengine's ``HOOKS``, ...), so one config mixes
them with the stock ones. A config read through an ``mmcvpt::`` base gets
``_scope_='mmcvpt'`` on its typed dicts (mmengine marks what a package's
base defines), and mmengine then imports ``mmcvpt.registry`` and looks for
an ``mmcvpt`` child in each registry tree. The children here answer every
look-up from the registry of the scope the config runs in (its
``default_scope``, e.g. ``mmseg``), exactly what the same dicts get from a
checkout's config; without them mmengine falls back to the calling
registry after two warnings per build.
"""
from mmengine.registry import DefaultScope, Registry
from mmengine.registry import root as mmengine_root

SCOPE = 'mmcvpt'


def outer_scope():
    """The scope a build runs in, under any ``mmcvpt`` overwrite: the
    latest default scope that is not ``mmcvpt`` (None if there is none)."""
    for instance in reversed(list(DefaultScope._instance_dict.values())):
        if instance.scope_name != SCOPE:
            return instance.scope_name
    return None


class ScopeAliasRegistry(Registry):
    """A child of an mmengine root registry under the ``mmcvpt`` scope that
    holds nothing and looks every key up in the outer scope's registry."""

    def __init__(self, parent: Registry):
        super().__init__(parent.name, parent=parent, scope=SCOPE)

    def get(self, key: str):
        scope = outer_scope()
        registry = self.parent._search_child(scope) if scope else None
        if registry is None or registry is self:
            registry = self.parent
        return registry.get(key)


def add_scope_aliases() -> None:
    """Give each of mmengine's root registries an ``mmcvpt`` child."""
    for registry in vars(mmengine_root).values():
        if (isinstance(registry, Registry) and registry.parent is None
                and SCOPE not in registry.children):
            ScopeAliasRegistry(registry)


add_scope_aliases()
