"""The folded form of the prompt cross-attention.

Because Wq and Wo are frozen and every softmax row sums to one, each head's
query projection can be folded into its keys and its output projection into
its values. The per-layer matrices ``Mq = [Wq_h^T K_h^T]_h`` (C x h*m) and
``Vo = [V_h Wo_h^T]_h`` (h*m x C) are built from the prompts once per
forward (per sample with per-sample prompt dropout: batched GEMMs); the
cross-attention is then two GEMMs and a per-head softmax over ``m``.
Cheaper than the direct form whenever ``h * m < C + m``.
"""
from typing import NamedTuple, Optional

import torch
from torch import Tensor

from .prompt_projections import project_prompts


class FoldedPrompts(NamedTuple):
    """Prompts folded with the frozen q and output projections.

    The scaled scores are ``F.linear(x, mq, score_bias)`` and the attention
    output is ``attn @ vo``; with per-sample prompts each has a leading
    batch dimension B.
    """
    mq: Tensor  # (h*m, C)
    score_bias: Optional[Tensor]  # (h*m, ), None without a q/k bias
    vo: Tensor  # (h*m, C)


def folded_is_cheaper(embed_dims: int, num_heads: int,
                      num_prompts: int) -> bool:
    """Whether the folded form needs fewer FLOPs per query than direct.

    Per query token the folded form costs ``2*C*h*m`` multiply-adds, the
    direct form ``2*C*C + 2*m*C``.
    """
    return num_heads * num_prompts < embed_dims + num_prompts


def fold_prompts(prompts: Tensor, qkv_weight: Tensor,
                 qkv_bias: Optional[Tensor], proj_weight: Tensor,
                 num_heads: int) -> FoldedPrompts:
    """Fold the frozen q and output projections into the prompts.

    Args:
        prompts (Tensor): Prompts of one layer, shape (m, C), or per-sample
            prompts (B, m, C) (prompt dropout with one mask per sample).
        qkv_weight (Tensor): Stacked q/k/v weight, shape (3C, C).
        qkv_bias (Tensor, optional): Stacked q/k/v bias, shape (3C, ).
        proj_weight (Tensor): Output projection weight, shape (C, C).
        num_heads (int): Number of attention heads h.

    Returns:
        FoldedPrompts: ``mq`` (h*m, C), ``score_bias`` (h*m, ) or None and
        ``vo`` (h*m, C); with per-sample prompts each gets a leading batch
        dimension B.
    """
    *lead, m, C = prompts.shape
    h, d = num_heads, C // num_heads
    k, v = project_prompts(prompts, qkv_weight, qkv_bias, num_heads)
    k = k * d**-0.5
    # Per head: Wq_h (d, C) is a contiguous row block of the q weight, and
    # Wo_h^T (d, C) a row block of Wo^T.
    mq = _per_head_gemm(k, qkv_weight[:C].view(h, d, C))
    score_bias = None
    if qkv_bias is not None:
        score_bias = _per_head_gemm(k, qkv_bias[:C].view(h, d, 1)).flatten(-2)
    vo = _per_head_gemm(v, proj_weight.t().reshape(h, d, C))
    return FoldedPrompts(mq, score_bias, vo)


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
    """:func:`attend_folded` with per-sample mq (B, h*m, C), vo (B, h*m, C).
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


def attend_folded(x: Tensor, folded: FoldedPrompts, num_heads: int,
                  proj_bias: Optional[Tensor]) -> Tensor:
    """Tokens x (B, N, C) attend to folded prompts -> (B, N, C)."""
    mq, score_bias, vo = folded
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
