"""tools/analysis_tools/benchmark_heads.py at tiny widths: the three
variants, train-step times, parameter counts against a count by hand of
the tiny ViT, peak memory of the probe processes."""
import json

import pytest

from tests.seg_fixtures import load_tool, run_tool

TOOL = 'tools/analysis_tools/benchmark_heads.py'
VARIANTS = ('cvpt-m2f', 'cvpt-upernet', 'full-m2f')


def tiny_vit_params(c=32, ffn=64, layers=2, img=64, patch=16):
    """Parameters of the --tiny ViT without prompts, counted by hand:
    patch embedding, class token, position embedding, the layers (two
    LayerNorms, qkv, proj, two FFN linears) and the final LayerNorm."""
    patches = (img // patch)**2
    embed = 3 * patch * patch * c + c + c + (1 + patches) * c
    layer = 2 * c + (3 * c * c + 3 * c) + (c * c + c) + 2 * c + \
        (c * ffn + ffn) + (ffn * c + c)
    return embed + layers * layer + 2 * c


@pytest.fixture(scope='module')
def bench():
    return load_tool(TOOL)


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp('bench') / 'heads.json'
    proc = run_tool(TOOL, '--tiny', '--rounds', '1', '--memory-jobs', '3',
                    '--json', str(out))
    return proc.stdout, json.loads(out.read_text())


def test_tiny_run_table_and_json(tiny_run):
    stdout, data = tiny_run
    rows = [line.split(' | ')[0] for line in stdout.splitlines()
            if line.startswith('| ')][1:]
    assert rows == [f'| {n}' for n in VARIANTS]
    results = data['results']
    assert list(results) == list(VARIANTS)
    for r in results.values():
        assert r['train'] > 0 and len(r['train_rounds']) == 1
        # a probe's VmHWM: at least the RSS it had before the build
        assert r['memory_mb'] >= r['imports_mb'] > 0
    base = results['cvpt-upernet']
    assert (f'| cvpt-upernet | 0.08M / 0.12M | {base["train"]:.2f} | 1.00 '
            f'| {base["memory_mb"]:.0f} | 1.00 |') in stdout


def test_trainable_counts_by_hand(tiny_run):
    results = tiny_run[1]['results']
    frozen = tiny_vit_params()
    assert frozen == 42336
    prompts = 2 * 4 * 32  # layers x prompts x C
    for name in ('cvpt-m2f', 'cvpt-upernet'):
        r = results[name]
        assert r['trainable'] == r['total'] - frozen, name
    full = results['full-m2f']
    assert full['trainable'] == full['total']
    # the same Mask2Former model without the prompts
    assert full['total'] == results['cvpt-m2f']['total'] - prompts


def test_batch_of_one_needs_no_upernet(bench, capsys):
    with pytest.raises(SystemExit):
        bench.parse_args(['--batch-size', '1'])
    assert 'UperNet cannot train its BN on one image' in \
        capsys.readouterr().err
    args = bench.parse_args(
        ['--batch-size', '1', '--only', 'full-m2f', 'cvpt-m2f'])
    assert args.variants == ['cvpt-m2f', 'full-m2f']
