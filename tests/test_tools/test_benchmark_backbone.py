import json
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
    args = bench.parse_args([
        '--arch', 'tiny', '--img-size', '32', '--variants', 'cvpt',
        'cvpt_batchdrop'
    ])
    modes = {
        name: bench.build(name, args)[0]['backbone'].prompt_dropout_mode
        for name in ('cvpt3', 'cvpt_batchdrop3', 'vpt3')
    }
    assert modes == dict(
        cvpt3='sample', cvpt_batchdrop3='batch', vpt3='sample')


def test_dinov2_b_at_518(bench):
    """--arch dinov2-b --img 518: DINOv2-B/14 with 4 registers at its
    pretraining size, 37x37 = 1369 patches, for every variant."""
    args = bench.parse_args([
        '--arch', 'dinov2-b', '--img', '518', '--only', 'cvpt10', 'cvpt200',
        'vpt200'
    ])
    assert args.img_size == 518
    assert bench.variant_names(args) == [
        'frozen', 'cvpt10', 'cvpt200', 'vpt200'
    ]
    assert bench.token_count(args) == 'tokens=1+4+1369'
    for name in ('frozen', 'cvpt10', 'vpt200'):
        backbone = bench.build(name, args)[0]['backbone']
        assert backbone.patch_resolution == (37, 37)
        assert backbone.patch_embed.projection.kernel_size == (14, 14)
        assert backbone.register_tokens.shape == (1, 4, 768)
        assert backbone.layers[0].attn.gamma1.weight.shape == (768, )
        trainable = [
            n for n, p in backbone.named_parameters() if p.requires_grad
        ]
        assert trainable == ([] if name == 'frozen' else ['prompts'])
    assert bench.build('vpt200', args)[0]['backbone'].prompts.shape == \
        (12, 200, 768)


def test_only_rejects_unknown_names(bench, capsys):
    with pytest.raises(SystemExit):
        bench.parse_args(['--only', 'cvpt10', 'lora8'])
    assert "'lora8' is not cvptM" in capsys.readouterr().err


def test_runs_tiny_dinov2_with_only(bench, tmp_path, capsys):
    out = tmp_path / 'bench.json'
    bench.main([
        '--arch', 'tiny-dinov2', '--img', '42', '--rounds', '1', '--warmup',
        '0', '--only', 'cvpt2', 'cvpt5', 'vpt5', '--no-memory', '--json',
        str(out)
    ])
    lines = capsys.readouterr().out.splitlines()
    assert 'arch=tiny-dinov2' in lines[0] and 'tokens=1+4+9' in lines[0]
    assert [line.split(' |')[0] for line in lines if line[:2] == '| '][1:] \
        == ['| frozen', '| cvpt2', '| cvpt5', '| vpt5']
    # the speed-up line for the prompt count measured with both methods only
    assert [line.split(':')[0] for line in lines if line.startswith('m=')] \
        == ['m=5']
    assert set(json.loads(
        out.read_text())['results']) == {'frozen', 'cvpt2', 'cvpt5', 'vpt5'}


def test_dinov3_rope_variants(bench, capsys):
    """tiny-dinov3: cvptM rotates the cross-attention's queries (direct),
    cvpt_noropeM does not; both run and are named in the table."""
    args = bench.parse_args([
        '--arch', 'tiny-dinov3', '--img-size', '32', '--only', 'cvpt3',
        'cvpt_norope3', 'vpt3'
    ])
    built = {n: bench.build(n, args)[0]['backbone']
             for n in ('frozen', 'cvpt3', 'cvpt_norope3', 'vpt3')}
    assert all(b.rope is not None and b.pos_embed is None
               for b in built.values())
    assert built['cvpt3'].cross_attn_rope
    assert not built['cvpt_norope3'].cross_attn_rope
    bench.main(['--arch', 'tiny-dinov3', '--img-size', '32', '--rounds', '1',
                '--warmup', '0', '--only', 'cvpt2', 'cvpt_norope2',
                '--no-memory'])
    table = capsys.readouterr().out
    assert 'tokens=1+4+4' in table and '| cvpt_norope2 |' in table
    with pytest.raises(SystemExit):
        bench.parse_args(['--arch', 'b', '--only', 'cvpt_norope10'])
    assert 'cvpt_norope10 needs an arch with rotary positions' in \
        capsys.readouterr().err
