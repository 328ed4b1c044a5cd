import cv2
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS

import mmcvpt  # noqa: F401
from mmcvpt.models.layers import prompt_attention_probs
from tests.seg_fixtures import load_tool, make_sample, tiny_config

TOOL = 'tools/visualization/prompt_attention.py'


@pytest.fixture(scope='module')
def tool():
    return load_tool(TOOL)


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('attn')
    sample = make_sample(tmp / 'samples')
    cfg = tiny_config(tmp / 'tiny.py', sample)
    config = Config.fromfile(cfg)
    with MODELS.switch_scope_and_registry('mmseg') as reg:
        model = reg.build(config.model)
    torch.save({
        'state_dict': model.state_dict(),
        'meta': {}
    }, tmp / 'ckpt.pth')
    return tmp, cfg, sample


def test_probs_rows_sum_to_one():
    C, h, m = 32, 4, 7
    probs = prompt_attention_probs(
        torch.randn(2, 9, C), torch.randn(m, C), torch.randn(3 * C, C),
        torch.randn(3 * C), h)
    assert probs.shape == (2, h, 9, m)
    assert torch.allclose(probs.sum(-1), torch.ones(2, h, 9), atol=1e-6)


def test_maps_and_png(tool, setup, tmp_path):
    tmp, cfg, sample = setup
    image = str(sample / 'images/validation/ADE_val_00000001.jpg')
    model = tool.build_model(str(cfg), str(tmp / 'ckpt.pth'))
    resized, maps = tool.prompt_attention(model, cv2.imread(image), {0, 3})
    assert sorted(maps) == [0, 3] and resized.shape == (64, 64, 3)
    strength, probs = maps[3]
    assert strength.shape == (4, 4) and probs.shape == (4, 4, 4)
    assert torch.allclose(probs.sum(0), torch.ones(4, 4), atol=1e-5)
    out = tmp_path / 'attn.png'
    tool.main([
        str(cfg),
        str(tmp / 'ckpt.pth'), image, '--layers', '0', '3', '--prompts', '3',
        '--out',
        str(out)
    ])
    png = cv2.imread(str(out))
    assert png.shape == (2 * 64, (2 + 3) * 64, 3)


def test_bad_layer(tool, setup):
    tmp, cfg, sample = setup
    image = str(sample / 'images/validation/ADE_val_00000001.jpg')
    with pytest.raises(
            SystemExit,
            match=r'--layers \[7\] out of range: the '
            r'backbone has blocks 0\.\.3'):
        tool.main([str(cfg), str(tmp / 'ckpt.pth'), image, '--layers', '7'])
