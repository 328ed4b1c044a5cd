"""2-D rotary position embedding of the patch tokens, as DINOv3's.

DINOv3 <https://arxiv.org/abs/2508.10104> has no absolute position
embedding: in every self-attention the queries and keys of the patch
tokens are rotated by angles that depend on the patch's (row, column); the
class and storage (register) tokens are not rotated. Per head of d
channels, channel i and channel i + d/2 form a pair rotated by angle
``2 pi c / period_j``, where the first d/4 pairs take the row coordinate c
and the next d/4 the column coordinate, ``period_j = base ** (4j / d)``
and the coordinates are the patch centres mapped to [-1, 1] over the grid
(``normalize_coords='separate'``: rows by H, columns by W). The angles are
computed for the actual grid, so any input size works.

Only the inference form: DINOv3's pretraining augmentations of the
coordinates (shift, jitter, rescale) are not used for a frozen backbone.
"""
import math
from typing import NamedTuple

import torch
import torch.nn as nn
from torch import Tensor

NORMALIZE_COORDS = ('separate', 'max', 'min')


class RotaryPositions(NamedTuple):
    """The rotation of one input's patch tokens.

    ``sin``/``cos`` (HW, d), float32 (float64 for a float64 model): the
    rotation runs in their dtype; ``start`` is the index of the first patch
    token in the sequence (after the class and register tokens); tokens
    outside [start, start + HW) are not rotated.
    """
    sin: Tensor
    cos: Tensor
    start: int


def _rotate_half(t: Tensor) -> Tensor:
    first, second = t.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


def rotate_tokens(t: Tensor, rope: RotaryPositions, dim: int) -> Tensor:
    """Rotate the patch tokens of per-head queries or keys.

    Args:
        t (Tensor): (..., N, ..., d) with the token axis at ``dim``, e.g.
            (B, h, N, d) with dim=-2 or (B, N, h, d) with dim=1.
        rope (RotaryPositions): Sin/cos of the grid and the first patch
            token's index.
        dim (int): The token axis of ``t``.

    Returns:
        Tensor: Same shape and dtype; the rotation runs in ``rope``'s dtype.
    """
    dim = dim % t.dim()
    hw = rope.sin.shape[0]
    shape = [1] * t.dim()
    shape[dim], shape[-1] = hw, rope.sin.shape[-1]
    sin, cos = rope.sin.view(shape), rope.cos.view(shape)
    head, patches, tail = t.split(
        [rope.start, hw, t.shape[dim] - rope.start - hw], dim=dim)
    p = patches.to(sin.dtype)
    p = (p * cos + _rotate_half(p) * sin).to(t.dtype)
    return torch.cat((head, p, tail), dim=dim)


class DINOv3RoPE(nn.Module):
    """Sin/cos of DINOv3's rotary embedding for a patch grid.

    No parameters or buffers: the periods ``base ** (4j / d)`` are computed
    with the angles, in float32 (as DINOv3 and timm) or the model's float64,
    never in half precision (DINOv3's files store the periods rounded to
    bfloat16; the converter checks and drops them).

    Args:
        head_dims (int): Channels per head d, a multiple of 4.
        base (float): Period base (DINOv3's ``pos_embed_rope_base``).
            Defaults to 100.
        normalize_coords (str): 'separate' (rows by H, columns by W, as
            DINOv3), 'max' or 'min' (both by max(H, W) or min(H, W)).
            Defaults to 'separate'.
    """

    def __init__(self,
                 head_dims: int,
                 base: float = 100.,
                 normalize_coords: str = 'separate'):
        super().__init__()
        if head_dims % 4:
            raise ValueError(f'rotary positions need head channels divisible '
                             f'by 4 (2 axes x sin/cos pairs), got {head_dims}')
        if normalize_coords not in NORMALIZE_COORDS:
            raise ValueError(f'rope normalize_coords must be one of '
                             f'{NORMALIZE_COORDS}, got {normalize_coords!r}')
        self.head_dims = head_dims
        self.base = float(base)
        self.normalize_coords = normalize_coords

    def extra_repr(self) -> str:
        return (f'head_dims={self.head_dims}, base={self.base}, '
                f'normalize_coords={self.normalize_coords!r}')

    def periods(self, device=None, dtype=torch.float32) -> Tensor:
        """(d/4, ) periods ``base ** (4j / d)``."""
        j = torch.arange(self.head_dims // 4, device=device, dtype=dtype)
        return self.base**(j * 4 / self.head_dims)

    def forward(self,
                hw: tuple,
                start: int,
                device=None,
                dtype=torch.float32) -> RotaryPositions:
        """The rotation for an (H, W) grid whose first patch token is at
        index ``start``, computed in ``dtype`` (float32 or float64)."""
        H, W = hw
        dev = device
        if self.normalize_coords == 'separate':
            norm_h, norm_w = H, W
        else:
            norm_h = norm_w = (max if self.normalize_coords == 'max' else
                               min)(H, W)
        rows = torch.arange(0.5, H, device=dev, dtype=dtype) / norm_h
        cols = torch.arange(0.5, W, device=dev, dtype=dtype) / norm_w
        coords = torch.stack(
            torch.meshgrid(rows, cols, indexing='ij'), dim=-1).flatten(0, 1)
        coords = 2. * coords - 1.  # (HW, 2) in [-1, 1]
        angles = 2 * math.pi * coords[:, :, None] / self.periods(dev, dtype)
        angles = angles.flatten(1).tile(2)  # (HW, d)
        return RotaryPositions(angles.sin(), angles.cos(), start)
