"""``mmcvpt::`` config paths, as a user's own project meets them.

A wheel built from (a copy of) the checkout is installed into a temporary
target without dependencies; a fresh interpreter that imports mmcvpt from
that target (not the checkout) reads child configs whose ``_base_`` is an
``mmcvpt::`` path, and must get the checkout's config plus the child's
override. One wheel build per session (module-scoped fixture).
"""
import ast
import json
import os
import shutil
import subprocess
import sys
import zipfile

import mmengine.config.utils as mm_config_utils
import pytest
from mmengine import Config

import mmcvpt  # noqa: F401  (registers the `mmcvpt::` scope)
from mmcvpt.utils.config_scope import PACKAGE, register_config_scope
from tests.seg_fixtures import REPO

HEADLINE = 'cvpt/cvpt_vit-b16_upernet_8xb2-160k_ade20k-512x512.py'
MODEL_BASE = '_base_/models/upernet_cvpt_vit-b16.py'
# child file -> (its _base_, its override of `model`)
CHILDREN = {
    'my_headline.py': (f'mmcvpt::{HEADLINE}',
                       dict(decode_head=dict(num_classes=19))),
    'my_model.py': (f'mmcvpt::{MODEL_BASE}',
                    dict(backbone=dict(num_prompts=7))),
}
# What setup.py needs to build; the rest of the checkout stays behind.
SOURCES = ('setup.py', 'setup.cfg', 'MANIFEST.in', 'README.md',
           'model-index.yml', 'requirements', 'mmcvpt', 'configs', 'tools')

READ_CHILDREN = """
import json, sys
import mmcvpt
from mmengine import Config
out = {'mmcvpt': mmcvpt.__file__}
for name in sys.argv[1:]:
    out[name] = Config.fromfile(name).to_dict()
print('RESULT ' + json.dumps(out))
"""


def _write_children(folder):
    for name, (base, model) in CHILDREN.items():
        (folder / name).write_text(f'_base_ = [{base!r}]\nmodel = {model!r}\n')


def _unscoped(cfg):
    """``cfg`` without the ``_scope_='mmcvpt'`` mmengine puts on the
    outermost ``type`` dicts of a ``mmcvpt::`` base (as for ``mmseg::``)."""
    if isinstance(cfg, dict):
        return {k: _unscoped(v) for k, v in cfg.items()
                if not (k == '_scope_' and v == 'mmcvpt')}
    if isinstance(cfg, list):
        return [_unscoped(v) for v in cfg]
    return cfg


def _expected(checkout_cfg, override):
    """The checkout's config with the child's ``model`` override merged."""
    cfg = Config.fromfile(REPO / 'configs' / checkout_cfg)
    cfg.merge_from_dict(dict(model=override))
    return json.loads(json.dumps(cfg.to_dict()))


@pytest.fixture(scope='module')
def installed_wheel(tmp_path_factory):
    """(wheel path, install target) of mmcvpt built from a checkout copy."""
    root = tmp_path_factory.mktemp('wheel')
    src = root / 'src'
    src.mkdir()
    ignore = shutil.ignore_patterns('__pycache__', '*.pyc', '.mim')
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=ignore)
        else:
            shutil.copy2(path, src / name)
    pip = [sys.executable, '-m', 'pip', '-q', '--disable-pip-version-check']
    subprocess.run(
        pip + ['wheel', '--no-deps', '--no-build-isolation', '--no-index',
               '-w', str(root / 'dist'), str(src)],
        check=True, timeout=300)
    wheel, = (root / 'dist').glob('mmcvpt-*.whl')
    target = root / 'target'
    subprocess.run(
        pip + ['install', '--no-deps', '--no-index', '--target',
               str(target), str(wheel)],
        check=True, timeout=300)
    return wheel, target


def test_wheel_ships_configs_and_tools(installed_wheel):
    wheel, _ = installed_wheel
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in (f'configs/{HEADLINE}', f'configs/{MODEL_BASE}',
                 'configs/cvpt_vitb_ade20k.py', 'tools/train.py',
                 'tools/dist_train.sh', 'model-index.yml'):
        assert f'mmcvpt/.mim/{path}' in names, path
    # Only the library is a package; tests/ stays in the checkout.
    tops = {n.split('/')[0] for n in names}
    assert tops == {'mmcvpt', f'mmcvpt-{mmcvpt.__version__}.dist-info'}
    assert not any('__pycache__' in n for n in names)


def test_installed_wheel_resolves_mmcvpt_bases(installed_wheel, tmp_path):
    _, target = installed_wheel
    _write_children(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(target))
    proc = subprocess.run(
        [sys.executable, '-c', READ_CHILDREN, *CHILDREN],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line, = [x for x in proc.stdout.splitlines() if x.startswith('RESULT ')]
    result = json.loads(line[len('RESULT '):])
    # The fresh interpreter used the installed wheel, not the checkout.
    assert result['mmcvpt'] == str(target / 'mmcvpt' / '__init__.py')
    headline = result['my_headline.py']
    expected = _expected(HEADLINE, CHILDREN['my_headline.py'][1])
    assert headline['model'] == expected['model']
    assert _unscoped(headline) == expected
    assert headline['model']['decode_head']['num_classes'] == 19
    assert headline['model']['backbone']['num_prompts'] == 200
    model = result['my_model.py']
    assert _unscoped(model) == _expected(MODEL_BASE,
                                         CHILDREN['my_model.py'][1])
    assert model['model']['backbone']['num_prompts'] == 7


def test_short_name_is_the_headline():
    """configs/cvpt_vitb_ade20k.py (the README's) is the headline, unchanged:
    the tests of the short name cover the OpenMMLab-named file."""
    short = Config.fromfile(REPO / 'configs/cvpt_vitb_ade20k.py')
    assert short.to_dict() == Config.fromfile(
        REPO / 'configs' / HEADLINE).to_dict()
    # nothing copied: a header line and the _base_ line
    lines = (REPO / 'configs/cvpt_vitb_ade20k.py').read_text().splitlines()
    assert lines[1:] == [f"_base_ = ['./{HEADLINE}']"]


def test_checkout_install_resolves_mmcvpt_bases(tmp_path):
    """The editable install (mmcvpt/.mim links) resolves them in-process."""
    _write_children(tmp_path)
    for name, (base, override) in CHILDREN.items():
        got = Config.fromfile(tmp_path / name).to_dict()
        got = _unscoped(json.loads(json.dumps(got)))
        assert got == _expected(base.partition('::')[2], override), name


def _mmengine_table():
    """MODULE2PACKAGE as written in mmengine's source (before any import)."""
    tree = ast.parse(open(mm_config_utils.__file__, encoding='utf-8').read())
    node, = [n for n in tree.body if isinstance(n, ast.Assign)
             and getattr(n.targets[0], 'id', None) == 'MODULE2PACKAGE']
    return ast.literal_eval(node.value)


def test_import_adds_mmcvpt_scope_only():
    assert 'mmcvpt' not in _mmengine_table()
    assert mm_config_utils.MODULE2PACKAGE == {
        **_mmengine_table(), 'mmcvpt': PACKAGE}
    # Calling it again changes nothing; an existing entry is kept.
    register_config_scope()
    assert mm_config_utils.MODULE2PACKAGE['mmcvpt'] == PACKAGE


def test_scope_package_is_the_imported_mmcvpt():
    """mmengine finds the imported mmcvpt's folder, editable or not."""
    from mmengine.utils import get_installed_path
    assert get_installed_path(PACKAGE) == os.path.dirname(mmcvpt.__file__)


def test_mmcvpt_scoped_dicts_build_like_the_checkouts(tmp_path, capfd):
    """The dicts an ``mmcvpt::`` base marks ``_scope_='mmcvpt'`` (hooks,
    the scheduler) build the same classes as the checkout's unmarked ones,
    from the config's default scope, without mmengine's two warnings per
    build ('mmcvpt is not installed', 'Failed to search registry')."""
    import torch
    from mmengine.registry import HOOKS, PARAM_SCHEDULERS, DefaultScope
    _write_children(tmp_path)
    child = Config.fromfile(tmp_path / 'my_headline.py')
    checkout = Config.fromfile(REPO / 'configs' / HEADLINE)
    marked = [c for c in child.custom_hooks if c.get('_scope_') == 'mmcvpt']
    assert len(marked) == len(checkout.custom_hooks) >= 4
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.)
    capfd.readouterr()
    with DefaultScope.overwrite_default_scope(child.default_scope):
        got = [type(HOOKS.build(dict(c))) for c in child.custom_hooks]
        want = [type(HOOKS.build(dict(c))) for c in checkout.custom_hooks]
        sched = PARAM_SCHEDULERS.build(
            dict(child.param_scheduler[0], optimizer=optimizer))
    out = capfd.readouterr()
    assert got == want
    assert type(sched).__name__ == 'PolyLR'
    assert 'WARNING' not in out.out + out.err, out.out + out.err
