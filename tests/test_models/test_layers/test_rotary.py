"""DINOv3's rotary positions: the angles against timm's DINOv3 RoPE and an
independent complex-number rotation; only the patch tokens turn."""
import pytest
import torch

from mmcvpt.models.layers import DINOv3RoPE, rotate_tokens
from tests.test_models.reference import ref_rotation


@pytest.mark.parametrize('head_dims,hw', [(64, (4, 6)), (12, (3, 5)),
                                          (128, (32, 32))])
def test_sin_cos_equal_timm(head_dims, hw):
    rope_mod = pytest.importorskip('timm.layers.pos_embed_sincos')
    timm_rope = rope_mod.RotaryEmbeddingDinoV3(
        head_dims, temperature=100., rotate_half=True)
    sin, cos = timm_rope.get_embed(shape=list(hw)).chunk(2, -1)
    ours = DINOv3RoPE(head_dims)(hw, start=5)
    assert ours.start == 5 and ours.sin.shape == (hw[0] * hw[1], head_dims)
    assert torch.equal(ours.sin, sin) and torch.equal(ours.cos, cos)


@pytest.mark.parametrize('dim', [-2, 1])
def test_rotation_equals_complex_reference(dim):
    hw, d, start = (3, 4), 12, 5
    n = start + 12 + 2  # prefix, patches, 2 tokens after the grid
    x = torch.randn(2, 3, n, d, dtype=torch.float64)
    rope = DINOv3RoPE(d)(hw, start, dtype=torch.float64)
    assert rope.sin.dtype == torch.float64
    t = x if dim == -2 else x.transpose(1, 2)  # (B, h, N, d) / (B, N, h, d)
    out = rotate_tokens(t, rope, dim)
    out = out if dim == -2 else out.transpose(1, 2)
    ref = ref_rotation(hw, d, 100., start)
    for h in range(3):
        assert (out[:, h] - ref(x[:, h])).abs().max() < 1e-12
    assert torch.equal(out[:, :, :start], x[:, :, :start])
    assert torch.equal(out[:, :, start + 12:], x[:, :, start + 12:])
    # a rotation: lengths of the (i, i + d/2) pairs kept
    pair = lambda t: t[..., :6]**2 + t[..., 6:]**2  # noqa: E731
    torch.testing.assert_close(pair(out), pair(x))


def test_half_precision_rotates_in_float32():
    module = DINOv3RoPE(16).half()
    assert list(module.buffers()) == [] and list(module.parameters()) == []
    rope = module((2, 2), 1)
    assert rope.sin.dtype == torch.float32
    x = torch.randn(1, 2, 5, 16)
    half = rotate_tokens(x.half(), rope, -2)
    assert half.dtype == torch.float16
    assert (half.float() - rotate_tokens(x, rope, -2)).abs().max() < 1e-2


def test_other_coordinate_normalisations():
    rows = DINOv3RoPE(8, normalize_coords='max')((2, 4), 0)
    # by max(H, W) = 4: row centres at (0.5, 1.5) / 4 -> -0.75, -0.25
    # (period 1 for the first pair); separate would give -0.5
    angle = torch.tensor(2 * torch.pi * -0.75)
    torch.testing.assert_close(rows.sin[0, 0], angle.sin())
    torch.testing.assert_close(rows.cos[0, 0], angle.cos())
    with pytest.raises(ValueError, match='^rotary positions need head '
                       'channels divisible by 4'):
        DINOv3RoPE(6)
