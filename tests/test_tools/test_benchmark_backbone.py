from argparse import Namespace

import pytest

from tests.seg_fixtures import load_tool

TOOL = 'tools/analysis_tools/benchmark_backbone.py'


@pytest.fixture(scope='module')
def bench():
    return load_tool(TOOL)


def test_ratios_in_table(bench):
    results = {
        'frozen': dict(infer=0.100, train=0.200, memory_mb=1000.),
        'cvpt10': dict(infer=0.105, train=0.214, memory_mb=1100.),
        'vpt10': dict(infer=0.210, train=0.428, memory_mb=1500.),
    }
    args = Namespace(
        device='cpu',
        arch='b',
        batch_size=4,
        img_size=224,
        rounds=10,
        prompts=[10])
    table = bench.format_table(results, args)
    assert '| frozen | 100 | 1.000 | 200 | 1.000 | 1000 | 1.00 |' in table
    assert '| cvpt10 | 105 | 1.050 | 214 | 1.070 | 1100 | 1.10 |' in table
    assert '| vpt10 | 210 | 2.100 | 428 | 2.140 | 1500 | 1.50 |' in table
    assert ('m=10: CVPT is 2.00x (inference) and 2.00x (train step) as fast '
            'as VPT-deep') in table


def test_runs_tiny(bench, tmp_path, capsys):
    out = tmp_path / 'bench.json'
    bench.main([
        '--arch', 'tiny', '--img-size', '32', '--rounds', '1', '--warmup', '0',
        '--prompts', '2', '--no-memory', '--json',
        str(out)
    ])
    table = capsys.readouterr().out
    for name in ('frozen', 'cvpt2', 'vpt2'):
        assert f'| {name} |' in table
    assert out.is_file() and '"cvpt2"' in out.read_text()


def test_dropout_mode_variants(bench):
    args = bench.parse_args(['--arch', 'tiny', '--img-size', '32',
                             '--variants', 'cvpt', 'cvpt_batchdrop'])
    modes = {
        name: bench.build(name, args)[0]['backbone'].prompt_dropout_mode
        for name in ('cvpt3', 'cvpt_batchdrop3', 'vpt3')
    }
    assert modes == dict(cvpt3='sample', cvpt_batchdrop3='batch',
                         vpt3='sample')
