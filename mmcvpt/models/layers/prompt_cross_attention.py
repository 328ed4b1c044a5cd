"""Cross-attention from image tokens to a block's prompts.

CVPT: Cross Visual Prompt Tuning <https://arxiv.org/abs/2408.14961>.

The image tokens ``x`` (queries) attend to the block's ``m`` prompts (keys
and values) with the block's own q/k/v/proj weights::

    CA(x, P) = Proj(softmax((x Wq + bq)(P Wk + bk)^T / sqrt(d)) (P Wv + bv))

Two exact implementations of the same function:

* ``direct``: project the queries, attend with
  :func:`torch.nn.functional.scaled_dot_product_attention`, project back.
  Prompt keys/values are projected once and shared by the whole batch
  (or once per sample when prompt dropout draws a mask per sample).
* ``folded``: because Wq and Wo are frozen and every softmax row sums to
  one, each head's query projection can be folded into its keys and its
  output projection into its values. The per-layer matrices
  ``Mq = [Wq_h^T K_h^T]_h`` (C x h*m) and ``Vo = [V_h Wo_h^T]_h`` (h*m x C)
  are built from the prompts once per forward (per sample with per-sample
  prompt dropout: batched GEMMs); the cross-attention is then two GEMMs and
  a per-head softmax over ``m``. Cheaper whenever ``h * m < C + m``.
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


def _project_prompts(prompts, qkv_weight, qkv_bias, num_heads):
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


def _attend_direct(x, k, v, qkv_weight, qkv_bias, proj_weight, proj_bias):
    B, N, C = x.shape
    h, d = k.shape[-3], k.shape[-1]
    q_bias = None if qkv_bias is None else qkv_bias[:C]
    q = F.linear(x, qkv_weight[:C], q_bias)
    if k.dim() == 4:  # per-sample keys/values (B, h, m, d)
        q = q.view(B, N, h, d).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2)
    else:
        # Keys/values shared by the batch: fold the batch into the query
        # length, (h, B*N, d) attends to (h, m, d) without B key copies.
        q = q.view(B * N, h, d).transpose(0, 1)
        out = F.scaled_dot_product_attention(q, k, v).transpose(0, 1)
    return F.linear(out.reshape(B, N, C), proj_weight, proj_bias)


def fold_prompts(prompts: Tensor, qkv_weight: Tensor,
                 qkv_bias: Optional[Tensor], proj_weight: Tensor,
                 num_heads: int):
    """Fold the frozen q and output projections into the prompts.

    Args:
        prompts (Tensor): Prompts of one layer, shape (m, C), or per-sample
            prompts (B, m, C) (prompt dropout with one mask per sample).
        qkv_weight (Tensor): Stacked q/k/v weight, shape (3C, C).
        qkv_bias (Tensor, optional): Stacked q/k/v bias, shape (3C, ).
        proj_weight (Tensor): Output projection weight, shape (C, C).
        num_heads (int): Number of attention heads h.

    Returns:
        tuple: ``mq`` (h*m, C) and ``score_bias`` (h*m, ) or None such that
        the scaled scores are ``F.linear(x, mq, score_bias)``, and ``vo``
        (h*m, C) such that the attention output is ``attn @ vo``; with
        per-sample prompts each gets a leading batch dimension B.
    """
    *lead, m, C = prompts.shape
    h, d = num_heads, C // num_heads
    k, v = _project_prompts(prompts, qkv_weight, qkv_bias, num_heads)
    k = k * d**-0.5
    # Per head: Wq_h (d, C) is a contiguous row block of the q weight, and
    # Wo_h^T (d, C) a row block of Wo^T.
    mq = _per_head_gemm(k, qkv_weight[:C].view(h, d, C))
    score_bias = None
    if qkv_bias is not None:
        score_bias = _per_head_gemm(k, qkv_bias[:C].view(h, d, 1)).flatten(-2)
    vo = _per_head_gemm(v, proj_weight.t().reshape(h, d, C))
    return mq, score_bias, vo


def _per_head_gemm(a, w):
    """a (..., h, m, d) times per-head w (h, d, n) -> (..., h*m, n).

    One bmm over the heads with the batch folded into m: broadcasting w over
    the batch instead would copy it B times (and keep the copies for
    backward).
    """
    h, m, d = a.shape[-3:]
    if a.dim() == 3:
        return torch.bmm(a, w).view(h * m, w.shape[-1])
    B = a.shape[0]
    out = torch.bmm(a.transpose(0, 1).reshape(h, B * m, d), w)
    return out.view(h, B, m, -1).transpose(0, 1).reshape(B, h * m, -1)


def _attend_folded_per_sample(x, mq, score_bias, vo, num_heads, proj_bias):
    """:func:`_attend_folded` with per-sample mq (B, h*m, C), vo (B, h*m, C).
    """
    B, N, C = x.shape
    hm = mq.shape[1]
    xt = x.transpose(1, 2)  # (B, C, N)
    if score_bias is None:
        scores = torch.bmm(mq, xt)
    else:
        scores = torch.baddbmm(score_bias[..., None], mq, xt)  # (B, hm, N)
    attn = scores.view(B, num_heads, hm // num_heads, N).softmax(dim=2)
    attn = attn.view(B, hm, N).transpose(1, 2)  # (B, N, hm)
    if proj_bias is None:
        return torch.bmm(attn, vo)
    return torch.baddbmm(proj_bias, attn, vo)


def _attend_folded(x, mq, score_bias, vo, num_heads, proj_bias):
    if mq.dim() == 3:
        return _attend_folded_per_sample(x, mq, score_bias, vo, num_heads,
                                         proj_bias)
    B, N, C = x.shape
    hm = mq.shape[0]
    x = x.reshape(B * N, C)
    # Scores transposed, (h*m, B*N): the softmax over each head's m prompts
    # then reduces a strided axis with a long contiguous inner axis, which
    # is ~20x faster than a softmax over a last axis of length m.
    if score_bias is None:
        scores = mq @ x.t()
    else:
        scores = torch.addmm(score_bias[:, None], mq, x.t())
    attn = scores.view(num_heads, hm // num_heads, B * N).softmax(dim=1)
    attn = attn.view(hm, B * N)
    if proj_bias is None:
        out = attn.t() @ vo
    else:
        out = torch.addmm(proj_bias, attn.t(), vo)
    return out.view(B, N, C)


def prepare_prompts(prompts: Tensor,
                    qkv_weight: Tensor,
                    qkv_bias: Optional[Tensor],
                    proj_weight: Tensor,
                    num_heads: int,
                    impl: str = 'auto') -> tuple:
    """The batch-independent half of :func:`prompt_cross_attention`.

    Returns:
        tuple: ``('folded', mq, score_bias, vo)`` (see :func:`fold_prompts`)
        or ``('direct', k, v)`` with per-head keys/values (h, m, d), or
        (B, h, m, d) for per-sample prompts (B, m, C).
    """
    if impl == 'auto':
        impl = 'folded' if folded_is_cheaper(prompts.shape[-1], num_heads,
                                             prompts.shape[-2]) else 'direct'
    if impl == 'folded':
        return ('folded', ) + fold_prompts(prompts, qkv_weight, qkv_bias,
                                           proj_weight, num_heads)
    if impl == 'direct':
        return ('direct', ) + _project_prompts(prompts, qkv_weight, qkv_bias,
                                               num_heads)
    raise ValueError(f'impl must be one of {IMPLS}, got {impl!r}')


def attend_prompts(x: Tensor, prepared: tuple, qkv_weight: Tensor,
                   qkv_bias: Optional[Tensor], proj_weight: Tensor,
                   proj_bias: Optional[Tensor], num_heads: int) -> Tensor:
    """The per-token half: x (B, N, C) attends to prepared prompts."""
    if prepared[0] == 'folded':
        _, mq, score_bias, vo = prepared
        return _attend_folded(x, mq, score_bias, vo, num_heads, proj_bias)
    _, k, v = prepared
    return _attend_direct(x, k, v, qkv_weight, qkv_bias, proj_weight,
                          proj_bias)


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
        prompts (Tensor): Prompts of this layer, shape (m, C), or one set
            per sample, (B, m, C).
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
    prepared = prepare_prompts(prompts, qkv_weight, qkv_bias, proj_weight,
                               num_heads, impl)
    return attend_prompts(x, prepared, qkv_weight, qkv_bias, proj_weight,
                          proj_bias, num_heads)


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


def prompt_attention_probs(x: Tensor, prompts: Tensor, qkv_weight: Tensor,
                           qkv_bias: Optional[Tensor],
                           num_heads: int) -> Tensor:
    """Attention of every token to every prompt, for analysis.

    Returns:
        Tensor: Shape (B, h, N, m); each row sums to 1 over the m prompts.
    """
    B, N, C = x.shape
    d = C // num_heads
    k, _ = _project_prompts(prompts, qkv_weight, qkv_bias, num_heads)
    q_bias = None if qkv_bias is None else qkv_bias[:C]
    q = F.linear(x, qkv_weight[:C], q_bias).view(B, N, num_heads, d)
    scores = torch.einsum('bnhd,hmd->bhnm', q, k) * d**-0.5
    return scores.softmax(dim=-1)
