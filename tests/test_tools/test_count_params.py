import pytest
from mmengine.config import Config

from tests.seg_fixtures import load_tool, tiny_config

TOOL = 'tools/analysis_tools/count_params.py'


@pytest.fixture(scope='module')
def tool():
    return load_tool(TOOL)


def test_trainable_is_prompts_plus_heads(tool, tmp_path, capsys):
    cfg = tiny_config(tmp_path / 'tiny.py', tmp_path)
    report, flops, shape = tool.count(Config.fromfile(cfg))
    m = report['modules']
    L, n_prompts, C = 4, 4, 64
    heads = sum(m[k][1] for k in ('neck', 'decode_head', 'auxiliary_head'))
    assert report['trainable'] == L * n_prompts * C + heads
    assert m['backbone'][0] == L * n_prompts * C
    assert shape == (64, 64) and flops > 0
    tool.main([str(cfg), '--no-flops'])
    out = capsys.readouterr().out
    assert f'backbone: trainable {L * n_prompts * C:,} /' in out


def test_prompts_add_flops(tool, tmp_path):
    cfg = tiny_config(tmp_path / 'tiny.py', tmp_path)
    _, with_prompts, _ = tool.count(Config.fromfile(cfg))
    frozen = Config.fromfile(cfg)
    frozen.model.backbone.num_prompts = 0
    _, without, _ = tool.count(frozen)
    assert with_prompts > without
