"""The q/k/v projections of the prompt cross-attention.

Shared by both of its forms (see :mod:`.prompt_cross_attention`) and by the
attention probabilities for analysis, so that each projection has one
implementation.
"""
from typing import Optional

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


class AttentionProjections(nn.Module):
    """A standalone q/k/v + output projection pair for the cross-attention.

    Used when the cross-attention does not share the block's self-attention
    weights (``cross_attn_weights='copy'`` or ``'random'``). Parameter names
    mirror mmpretrain's ``MultiheadAttention`` (``qkv``, ``proj``) so that a
    copy can be loaded from, or compared with, the self-attention.

    Args:
        embed_dims (int): Channels C.
        qkv_bias (bool): Whether q/k/v have a bias. Defaults to True.
    """

    def __init__(self, embed_dims: int, qkv_bias: bool = True):
        super().__init__()
        self.qkv = nn.Linear(embed_dims, embed_dims * 3, bias=qkv_bias)
        self.proj = nn.Linear(embed_dims, embed_dims)


def project_queries(x: Tensor, qkv_weight: Tensor,
                    qkv_bias: Optional[Tensor]) -> Tensor:
    """Queries of tokens x (B, N, C) -> (B, N, C), heads not split."""
    C = x.shape[-1]
    q_bias = None if qkv_bias is None else qkv_bias[:C]
    return F.linear(x, qkv_weight[:C], q_bias)


def project_prompts(prompts: Tensor, qkv_weight: Tensor,
                    qkv_bias: Optional[Tensor], num_heads: int) -> tuple:
    """Prompt keys and values per head from one GEMM.

    Prompts (m, C) give keys/values (h, m, d); per-sample prompts (B, m, C)
    give (B, h, m, d).
    """
    *lead, m, C = prompts.shape
    kv_bias = None if qkv_bias is None else qkv_bias[C:]
    kv = F.linear(prompts, qkv_weight[C:], kv_bias)  # (..., m, 2C)
    # unbind's backward stacks the key and value gradients straight into the
    # GEMM's (..., m, 2C) layout; indexing a (2, ..., h, m, d) permutation
    # instead costs two zero-filled buffers, an add and a copy per layer.
    k, v = kv.view(*lead, m, 2, num_heads, C // num_heads).unbind(-3)
    return k.transpose(-3, -2), v.transpose(-3, -2)  # (..., h, m, d)
