"""build_error: one line naming the class mmengine was building."""
import pytest
from mmengine.registry import Registry

from mmcvpt.launch import build_error

REG = Registry('mmcvpt-test-errors')


@REG.register_module()
class Inner:

    def __init__(self, size=1):
        if size < 0:
            raise ValueError(f'size must be >= 0, got {size}')


@REG.register_module()
class Outer:

    def __init__(self, inner, extra=None):
        if extra == 'bug':
            raise ValueError('line one\nline two')
        if extra == 'type':
            raise TypeError('unsupported operand type(s)')
        self.inner = REG.build(inner)


@REG.register_module()
class Child(Inner):
    """No __init__ of its own: the error comes from Inner's."""


def _line(cfg):
    with pytest.raises(Exception) as err:
        REG.build(cfg)
    return build_error(err.value)


def test_names_the_innermost_class_being_built():
    assert _line(dict(type='Outer', inner=dict(type='Inner', size=-1))) == \
        'cannot build Inner from the config: size must be >= 0, got -1'
    assert _line(dict(type='Outer', inner=dict(type='Inner', sise=1))) == (
        'cannot build Inner from the config: Inner.__init__() got an '
        "unexpected keyword argument 'sise'")
    assert _line(dict(type='Outer', inner=dict(type='Child', size=-2))) == \
        'cannot build Inner from the config: size must be >= 0, got -2'


def test_unknown_type_names_the_type():
    line = _line(dict(type='Outer', inner=dict(type='Innr')))
    assert line.startswith('cannot build Innr from the config: Innr is not '
                           'in the ')


@pytest.mark.parametrize('extra', ['bug', 'type'])
def test_bugs_keep_their_traceback(extra):
    assert _line(dict(type='Outer', inner=dict(type='Inner'),
                      extra=extra)) is None


def test_outside_a_build():
    try:
        Inner(size=-1)
    except ValueError as e:
        assert build_error(e) is None
