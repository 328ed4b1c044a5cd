"""The README's "Using mmcvpt from your own project" snippets, as written.

The two dataset configs are trained by tests/test_datasets/
test_custom_data.py; the rest runs here: the ``mmcvpt::`` child config, the
environment-variable route of a stock mmseg ``tools/train.py`` (a fresh
interpreter that reads the config before anything imports mmcvpt), the pip
pins of the mmpretrain-only install, and the ``--device cpu`` / safetensors
commands in a folder whose ``configs/demo/cvpt_vitb_ade20k-sample.py`` is
the tiny variant of the demo config (2 iterations: ``iter_40`` -> ``iter_2``).
"""
import json
import os
import re
import subprocess
import sys

from mmengine.config import Config

from tests.readme_snippets import OWN_PROJECT, section_blocks
from tests.seg_fixtures import REPO, make_sample, tiny_config

HEADLINE = 'configs/cvpt/cvpt_vit-b16_upernet_8xb2-160k_ade20k-512x512.py'
DEMO = 'configs/demo/cvpt_vitb_ade20k-sample.py'


def _plain(cfg):
    """A config dict without the ``_scope_`` marks of package bases."""
    if isinstance(cfg, dict):
        return {k: _plain(v) for k, v in cfg.items() if k != '_scope_'}
    if isinstance(cfg, (list, tuple)):
        return [_plain(v) for v in cfg]
    return cfg


def _headline_model(**override):
    cfg = Config.fromfile(REPO / HEADLINE)
    cfg.merge_from_dict(override)
    return _plain(cfg.model.to_dict())


def _bash(script, cwd, env=None):
    full_env = dict(os.environ, **(env or {}))
    full_env['PATH'] = os.path.dirname(sys.executable) + os.pathsep + \
        full_env['PATH']
    return subprocess.run(['bash', '-euo', 'pipefail', '-c', script],
                          cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=600)


def test_mmcvpt_base_snippet(tmp_path):
    block = section_blocks(OWN_PROJECT, 'python')[0]
    assert block.splitlines()[1].startswith("_base_ = ['mmcvpt::")
    child = tmp_path / 'my_cvpt_ade20k-p50.py'
    child.write_text(block)
    got = _plain(Config.fromfile(child).model.to_dict())
    assert got == _headline_model(**{'model.backbone.num_prompts': 50})


def test_stock_tool_route_reads_mmcvpt_configs_without_mmcvpt(tmp_path):
    """What a stock mmseg tools/train.py does: Config.fromfile first."""
    base, = [b for b in section_blocks(OWN_PROJECT, 'python')
             if 'MMCVPT_CONFIGS' in b]
    export, = [b for b in section_blocks(OWN_PROJECT, 'bash')
               if 'MMCVPT_CONFIGS' in b]
    (tmp_path / 'my_cfg.py').write_text(
        base + "model = dict(backbone=dict(num_prompts=50))\n")
    # mmcvpt comes in only through the config's own custom_imports
    read = ('import json, sys\nfrom mmengine import Config\n'
            "assert not [m for m in sys.modules if m.startswith('mmcvpt')]\n"
            "cfg = Config.fromfile('my_cfg.py')\n"
            "print('RESULT ' + json.dumps(cfg.model.to_dict()))\n")
    proc = _bash(export + f'python -c "{read}"', tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.split('RESULT ', 1)[1])
    want = _headline_model(**{'model.backbone.num_prompts': 50})
    assert _plain(got) == json.loads(json.dumps(want))
    # unset, mmengine's own line says what is missing
    proc = _bash(f'python -c "{read}"', tmp_path)
    assert '`MMCVPT_CONFIGS` cannot be found in `os.environ`' in proc.stderr


def test_mmpretrain_only_install_pins():
    install, = [b for b in section_blocks(OWN_PROJECT, 'bash')
                if 'mmcv-lite' in b]
    pins = dict(
        line.split('==') for line in
        (REPO / 'requirements/mminstall.txt').read_text().split() if '==' in
        line)
    first, second = install.strip().splitlines()
    assert first.split()[:2] == ['pip', 'install']
    asked = dict(word.split('==') for word in first.split()[2:])
    assert asked == {'mmengine': pins['mmengine'],
                     'mmcv-lite': pins['mmcv'],
                     'mmpretrain': pins['mmpretrain']}
    assert second == 'pip install --no-deps .'


def test_cpu_and_safetensors_commands(tmp_path):
    commands, = [b for b in section_blocks(OWN_PROJECT, 'bash')
                 if '--device cpu' in b]
    lines = [line for line in commands.splitlines() if line.strip()]
    assert len(lines) == 3 and all(DEMO in line for line in lines)
    (tmp_path / 'configs/demo').mkdir(parents=True)
    tiny_config(tmp_path / DEMO, make_sample(tmp_path / 'data'))
    (tmp_path / 'tools').symlink_to(REPO / 'tools')
    train, export, test = [line.replace('iter_40', 'iter_2')
                           for line in lines]

    proc = _bash(train, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    first = re.search(r' - mmengine - INFO - (.*)', proc.stdout).group(1)
    assert first.startswith('device: cpu (--device cpu)'), first
    assert (tmp_path / 'work_dirs/own/iter_2_peft.pth').is_file()

    proc = _bash(export, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    from safetensors import safe_open
    with safe_open(str(tmp_path / 'own_peft.safetensors'), 'pt') as f:
        meta = json.loads(f.metadata()['meta'])
        assert 'backbone.prompts' in f.keys()
    assert 'backbone.' in meta['peft']

    proc = _bash(test, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'mIoU' in proc.stdout + proc.stderr
