"""mmpretrain's self-attention and encoder layer, with two additions the
prompted backbones need: rotary positions (DINOv3) and the attention branch
without its DropPath (CVPT's parallel position)."""
from typing import Optional

import torch.nn as nn
from torch import Tensor

from .rotary import RotaryPositions, rotate_tokens


def self_attention(attn: nn.Module,
                   x: Tensor,
                   rope: Optional[RotaryPositions] = None,
                   drop_path: bool = True) -> Tensor:
    """mmpretrain ``MultiheadAttention.forward`` on x (B, N, C) -> (B, N, C).

    With ``rope`` the patch tokens' queries and keys are rotated (the other
    tokens are not); ``drop_path=False`` leaves out the output DropPath.
    Without rope and with DropPath it is the module's own forward.
    """
    if rope is None and drop_path:
        return attn(x)
    B, N, C = x.shape
    qkv = attn.qkv(x).reshape(B, N, 3, attn.num_heads, attn.head_dims)
    q, k, v = qkv.permute(2, 0, 3, 1, 4)  # 3 x (B, h, N, d)
    if rope is not None:
        q, k = rotate_tokens(q, rope, -2), rotate_tokens(k, rope, -2)
    dropout_p = attn.attn_drop if attn.training else 0.
    out = attn.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
    out = attn.proj(out.transpose(1, 2).reshape(B, N, C))
    out = attn.gamma1(attn.proj_drop(out))
    return attn.out_drop(out) if drop_path else out


def encoder_layer(layer: nn.Module,
                  x: Tensor,
                  rope: Optional[RotaryPositions] = None) -> Tensor:
    """mmpretrain ``TransformerEncoderLayer.forward`` with rotary positions
    in its self-attention (the layer itself without them)."""
    if rope is None:
        return layer(x)
    x = x + self_attention(layer.attn, layer.ln1(x), rope)
    return layer.ffn(layer.ln2(x), identity=x)
