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
    # Counted by hand for tests/seg_fixtures.py's tiny model (C=64, 4
    # layers, FFN 128, 16x16 patches of 64x64, 4 prompts; BN convs have no
    # bias; 150 classes).
    layer = (2 * 64 + 64 * 192 + 192 + 64 * 64 + 64 + 2 * 64 + 64 * 128 + 128 +
             128 * 64 + 64)  # ln1, qkv, proj, ln2, ffn
    prompts = 4 * 4 * 64
    backbone = (3 * 16 * 16 * 64 + 64 + 64 + 17 * 64 + 4 * layer + 2 * 64 +
                prompts)  # patch embed, cls, pos, layers, final norm
    neck = 4 * (64 * 32 + 32) + 4 * (32 * 32 * 9 + 32)  # lateral 1x1, 3x3
    decode = (
        4 * (32 * 16 + 2 * 16)  # pyramid pooling, 1x1 + BN
        + (32 + 4 * 16) * 16 * 9 + 2 * 16  # its bottleneck
        + 3 * (32 * 16 + 2 * 16) + 3 * (16 * 16 * 9 + 2 * 16)  # FPN
        + 4 * 16 * 16 * 9 + 2 * 16  # FPN bottleneck
        + 16 * 150 + 150)  # classifier
    auxiliary = 32 * 8 * 9 + 2 * 8 + 8 * 150 + 150
    assert (backbone, neck, decode, auxiliary) == (185408, 45312, 36470, 3670)
    assert report['modules'] == dict(
        backbone=(prompts, backbone),
        neck=(neck, neck),
        decode_head=(decode, decode),
        auxiliary_head=(auxiliary, auxiliary))
    assert report['trainable'] == prompts + neck + decode + auxiliary
    assert report['total'] == backbone + neck + decode + auxiliary
    assert shape == (64, 64) and flops > 0
    tool.main([str(cfg), '--no-flops'])
    out = capsys.readouterr().out
    assert out.splitlines() == [
        f'{cfg}: trainable 0.09M / 0.27M (31.93%)',
        '  backbone: trainable 1,024 / 185,408',
        '  neck: trainable 45,312 / 45,312',
        '  decode_head: trainable 36,470 / 36,470',
        '  auxiliary_head: trainable 3,670 / 3,670',
    ]


def test_prompts_add_the_folded_cross_attention_flops(tool, tmp_path):
    """The FLOPs the prompts add, counted by hand for the tiny model (C=64,
    h=4, d=16, 4 layers, m=4 prompts: h*m < C + m, so the folded form)."""
    cfg = tiny_config(tmp_path / 'tiny.py', tmp_path)
    _, with_prompts, _ = tool.count(Config.fromfile(cfg))
    frozen = Config.fromfile(cfg)
    frozen.model.backbone.num_prompts = 0
    _, without, _ = tool.count(frozen)
    L, C, h, m = 4, 64, 4, 4
    d, N = C // h, 1 + (64 // 16)**2  # class token + 4x4 patches
    per_layer = (
        m * C * 2 * C  # prompt keys and values, (m, C) x (C, 2C)
        + h * m * d * C  # Mq = [Wq_h^T K_h^T]_h, per head (m, d) x (d, C)
        + h * m * d  # score bias, per head (m, d) x (d, 1)
        + h * m * d * C  # Vo = [V_h Wo_h^T]_h
        + N * C * h * m  # scores, (N, C) x (C, h*m)
        + N * h * m * C)  # attention x Vo, (N, h*m) x (h*m, C)
    assert with_prompts - without == L * per_layer
