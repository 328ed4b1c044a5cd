"""Cross-attention from image tokens to a block's prompts.

CVPT: Cross Visual Prompt Tuning <https://arxiv.org/abs/2408.14961>.

The image tokens ``x`` (queries) attend to the block's ``m`` prompts (keys
and values) with the block's own q/k/v/proj weights::

    CA(x, P) = Proj(softmax((x Wq + bq)(P Wk + bk)^T / sqrt(d)) (P Wv + bv))

Two exact implementations of the same function:

* ``direct``: project the queries, attend with
  :func:`torch.nn.functional.scaled_dot_product_attention`, project back.
  Prompt keys/values are projected once and shared by the whole batch.
* ``folded``: because Wq and Wo are frozen and every softmax row sums to
  one, each head's query projection can be folded into its keys and its
  output projection into its values. The per-layer matrices
  ``Mq = [Wq_h^T K_h^T]_h`` (C x h*m) and ``Vo = [V_h Wo_h^T]_h`` (h*m x C)
  are built from the prompts once per forward; the cross-attention is then
  two GEMMs and a per-head softmax over ``m``. Cheaper whenever
  ``h * m < C + m``.
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

IMPLS = ('auto', 'folded', 'direct')


def folded_is_cheaper(embed_dims: int, num_heads: int,
                      num_prompts: int) -> bool:
    """Whether the folded form needs fewer FLOPs per query than direct.

    Per query token the folded form costs ``2*C*h*m`` multiply-adds, the
    direct form ``2*C*C + 2*m*C``.
    """
    return num_heads * num_prompts < embed_dims + num_prompts


def _split_qkv(qkv_weight: Tensor, qkv_bias: Optional[Tensor]):
    wq, wk, wv = qkv_weight.chunk(3, dim=0)
    if qkv_bias is None:
        return (wq, None), (wk, None), (wv, None)
    bq, bk, bv = qkv_bias.chunk(3, dim=0)
    return (wq, bq), (wk, bk), (wv, bv)


def _direct(x, prompts, q_proj, k_proj, v_proj, proj_weight, proj_bias,
            num_heads):
    B, N, C = x.shape
    m, d = prompts.shape[0], C // num_heads
    # Keys/values are shared by the batch, so fold the batch into the query
    # length: (h, B*N, d) attends to (h, m, d) without B copies of the keys.
    q = F.linear(x, *q_proj).view(B * N, num_heads, d).transpose(0, 1)
    k = F.linear(prompts, *k_proj).view(m, num_heads, d).transpose(0, 1)
    v = F.linear(prompts, *v_proj).view(m, num_heads, d).transpose(0, 1)
    out = F.scaled_dot_product_attention(q, k, v)  # (h, B*N, d)
    out = out.transpose(0, 1).reshape(B, N, C)
    return F.linear(out, proj_weight, proj_bias)


def fold_prompts(prompts: Tensor, qkv_weight: Tensor,
                 qkv_bias: Optional[Tensor], proj_weight: Tensor,
                 num_heads: int):
    """Fold the frozen q and output projections into the prompts.

    Args:
        prompts (Tensor): Prompts of one layer, shape (m, C).
        qkv_weight (Tensor): Stacked q/k/v weight, shape (3C, C).
        qkv_bias (Tensor, optional): Stacked q/k/v bias, shape (3C, ).
        proj_weight (Tensor): Output projection weight, shape (C, C).
        num_heads (int): Number of attention heads h.

    Returns:
        tuple: ``mq`` (h*m, C) and ``score_bias`` (h*m, ) or None, to be used
        as ``F.linear(x, mq, score_bias)`` for the scaled scores, and ``vo``
        (h*m, C) such that the attention output is ``attn @ vo``.
    """
    m, C = prompts.shape
    d = C // num_heads
    (wq, bq), k_proj, v_proj = _split_qkv(qkv_weight, qkv_bias)
    k = F.linear(prompts, *k_proj).view(m, num_heads, d) * d**-0.5
    v = F.linear(prompts, *v_proj).view(m, num_heads, d)
    mq = torch.einsum('hdc,mhd->hmc', wq.view(num_heads, d, C), k)
    score_bias = None
    if bq is not None:
        score_bias = torch.einsum('hd,mhd->hm', bq.view(num_heads, d), k)
        score_bias = score_bias.reshape(num_heads * m)
    vo = torch.einsum('mhd,chd->hmc', v, proj_weight.view(C, num_heads, d))
    return (mq.reshape(num_heads * m, C), score_bias,
            vo.reshape(num_heads * m, C))


def _folded(x, prompts, qkv_weight, qkv_bias, proj_weight, proj_bias,
            num_heads):
    B, N, C = x.shape
    m = prompts.shape[0]
    mq, score_bias, vo = fold_prompts(prompts, qkv_weight, qkv_bias,
                                      proj_weight, num_heads)
    scores = F.linear(x, mq, score_bias)  # (B, N, h*m)
    attn = scores.view(B, N, num_heads, m).softmax(dim=-1)
    attn = attn.view(B * N, num_heads * m)
    if proj_bias is None:
        out = attn @ vo
    else:
        out = torch.addmm(proj_bias, attn, vo)
    return out.view(B, N, C)


def prompt_cross_attention(x: Tensor,
                           prompts: Tensor,
                           qkv_weight: Tensor,
                           qkv_bias: Optional[Tensor],
                           proj_weight: Tensor,
                           proj_bias: Optional[Tensor],
                           num_heads: int,
                           impl: str = 'auto') -> Tensor:
    """Image tokens attend to prompts through the given attention weights.

    Args:
        x (Tensor): Query tokens, shape (B, N, C).
        prompts (Tensor): Prompts of this layer, shape (m, C).
        qkv_weight (Tensor): Stacked q/k/v weight as in ``nn.Linear(C, 3C)``.
        qkv_bias (Tensor, optional): Stacked q/k/v bias, shape (3C, ).
        proj_weight (Tensor): Output projection weight, shape (C, C).
        proj_bias (Tensor, optional): Output projection bias, shape (C, ).
        num_heads (int): Number of heads.
        impl (str): 'folded', 'direct', or 'auto' (folded when
            :func:`folded_is_cheaper`). Defaults to 'auto'.

    Returns:
        Tensor: Shape (B, N, C).
    """
    if impl == 'auto':
        impl = 'folded' if folded_is_cheaper(
            x.shape[-1], num_heads, prompts.shape[0]) else 'direct'
    if impl == 'folded':
        return _folded(x, prompts, qkv_weight, qkv_bias, proj_weight,
                       proj_bias, num_heads)
    if impl == 'direct':
        q_proj, k_proj, v_proj = _split_qkv(qkv_weight, qkv_bias)
        return _direct(x, prompts, q_proj, k_proj, v_proj, proj_weight,
                       proj_bias, num_heads)
    raise ValueError(f'impl must be one of {IMPLS}, got {impl!r}')


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
