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
* ``folded`` (:mod:`.prompt_folding`): the frozen query projection folded
  into the keys and the output projection into the values; two GEMMs and a
  per-head softmax over ``m``. Cheaper whenever ``h * m < C + m``.

With rotary positions (DINOv3, :mod:`.rotary`) the patch tokens' queries
can be rotated as the block's self-attention rotates them; the prompt keys,
position-free like DINOv3's storage tokens, are not. A rotation per query
position cannot be folded into one matrix, so that form runs direct.

:class:`PromptCrossAttention` owns no parameters: the weights are passed at
call time, so that the block's own self-attention weights are used by
reference, never registered twice nor copied, and a forward hook on it sees
everything the attention used (see :meth:`PromptCrossAttention.forward`).
"""
from typing import NamedTuple, Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .prompt_folding import (FoldedPrompts, attend_folded, fold_prompts,
                             folded_is_cheaper)
from .prompt_projections import (AttentionProjections, project_prompts,
                                 project_queries)
from .rotary import RotaryPositions, rotate_tokens

__all__ = [
    'IMPLS', 'AttentionProjections', 'DirectPrompts', 'FoldedPrompts',
    'LinearWeights', 'PromptCrossAttention', 'attend_direct', 'fold_prompts',
    'folded_is_cheaper', 'prompt_attention_probs', 'prompt_cross_attention'
]

IMPLS = ('auto', 'folded', 'direct')


class DirectPrompts(NamedTuple):
    """Per-head prompt keys and values for the direct form."""
    k: Tensor  # (h, m, d), or (B, h, m, d) for per-sample prompts
    v: Tensor  # as k


class LinearWeights(NamedTuple):
    """The ``weight`` and ``bias`` of a linear layer, as bare tensors; what
    :class:`PromptCrossAttention` reads from an ``nn.Linear``."""
    weight: Tensor
    bias: Optional[Tensor]


def _queries(x: Tensor, qkv_weight: Tensor, qkv_bias: Optional[Tensor],
             num_heads: int, rope: Optional[RotaryPositions]) -> Tensor:
    """Queries (B, N, h, d) of tokens x (B, N, C), patch tokens rotated by
    ``rope`` if given."""
    B, N, C = x.shape
    q = project_queries(x, qkv_weight, qkv_bias).view(B, N, num_heads, -1)
    return q if rope is None else rotate_tokens(q, rope, 1)


def attend_direct(x: Tensor,
                  direct: DirectPrompts,
                  qkv_weight: Tensor,
                  qkv_bias: Optional[Tensor],
                  proj_weight: Tensor,
                  proj_bias: Optional[Tensor],
                  rope: Optional[RotaryPositions] = None) -> Tensor:
    """Tokens x (B, N, C) attend to projected prompts -> (B, N, C); with
    ``rope`` the patch tokens' queries are rotated."""
    B, N, C = x.shape
    k, v = direct
    h, d = k.shape[-3], k.shape[-1]
    q = _queries(x, qkv_weight, qkv_bias, h, rope)
    if k.dim() == 4:  # per-sample keys/values (B, h, m, d)
        q = q.transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2)
    else:
        # Keys/values shared by the batch: fold the batch into the query
        # length, (h, B*N, d) attends to (h, m, d) without B key copies.
        q = q.view(B * N, h, d).transpose(0, 1)
        out = F.scaled_dot_product_attention(q, k, v).transpose(0, 1)
    return F.linear(out.reshape(B, N, C), proj_weight, proj_bias)


class PromptCrossAttention(nn.Module):
    """Image tokens attend to one layer's prompts through given weights.

    Holds no parameters or buffers (it adds nothing to a state dict): the
    q/k/v and output projections come with every call. A forward hook
    receives ``(x, prompts, qkv, proj)`` as its inputs, from which
    :meth:`attention_probs` gives the attention for analysis.

    Args:
        num_heads (int): Number of heads h.
        impl (str): 'folded', 'direct', or 'auto' (folded when
            :func:`folded_is_cheaper`). Defaults to 'auto'.
        value_bias (bool): Use the value and output biases (bv, bo). False
            drops both (bq, bk are kept). Defaults to True.
    """

    def __init__(self,
                 num_heads: int,
                 impl: str = 'auto',
                 value_bias: bool = True):
        super().__init__()
        if impl not in IMPLS:
            raise ValueError(f'impl must be one of {IMPLS}, got {impl!r}')
        self.num_heads = num_heads
        self.impl = impl
        self.value_bias = bool(value_bias)

    def extra_repr(self) -> str:
        return (f'num_heads={self.num_heads}, impl={self.impl!r}, '
                f'value_bias={self.value_bias}')

    def biases(self, qkv_bias: Optional[Tensor],
               proj_bias: Optional[Tensor]) -> tuple:
        """The (qkv_bias, proj_bias) this attention uses: with
        ``value_bias=False`` bv is zero and there is no bo."""
        if self.value_bias:
            return qkv_bias, proj_bias
        if qkv_bias is not None:  # keep bq, bk; bv = 0
            C = qkv_bias.shape[0] // 3
            qkv_bias = torch.cat([qkv_bias[:2 * C], qkv_bias.new_zeros(C)])
        return qkv_bias, None

    def prepare(self,
                prompts: Tensor,
                qkv_weight: Tensor,
                qkv_bias: Optional[Tensor],
                proj_weight: Tensor,
                rotated: bool = False) -> Union[FoldedPrompts, DirectPrompts]:
        """The batch-independent half: prompts (m, C) or (B, m, C) in the
        form ``impl`` picks (see :func:`fold_prompts`, :class:`DirectPrompts`);
        direct when the queries are ``rotated``.
        """
        impl = self.impl
        if rotated:
            if impl == 'folded':
                raise ValueError(
                    "cross_attn_impl='folded' cannot rotate the queries by "
                    "their positions; use 'auto' or 'direct', or "
                    'cross_attn_rope=False')
            impl = 'direct'
        if impl == 'auto':
            impl = 'folded' if folded_is_cheaper(
                prompts.shape[-1], self.num_heads,
                prompts.shape[-2]) else 'direct'
        if impl == 'folded':
            return fold_prompts(prompts, qkv_weight, qkv_bias, proj_weight,
                                self.num_heads)
        return DirectPrompts(
            *project_prompts(prompts, qkv_weight, qkv_bias, self.num_heads))

    def attend(self,
               x: Tensor,
               prepared: Union[FoldedPrompts, DirectPrompts],
               qkv_weight: Tensor,
               qkv_bias: Optional[Tensor],
               proj_weight: Tensor,
               proj_bias: Optional[Tensor],
               rope: Optional[RotaryPositions] = None) -> Tensor:
        """The per-token half: x (B, N, C) attends to prepared prompts."""
        if isinstance(prepared, FoldedPrompts):
            return attend_folded(x, prepared, self.num_heads, proj_bias)
        return attend_direct(x, prepared, qkv_weight, qkv_bias, proj_weight,
                             proj_bias, rope)

    def forward(self,
                x: Tensor,
                prompts: Tensor,
                qkv: nn.Linear,
                proj: nn.Linear,
                rope: Optional[RotaryPositions] = None) -> Tensor:
        """
        Args:
            x (Tensor): Query tokens, shape (B, N, C).
            prompts (Tensor): Prompts of this layer, shape (m, C), or one
                set per sample, (B, m, C).
            qkv (nn.Linear): Stacked q/k/v projection C -> 3C (or any
                ``weight``/``bias`` pair, e.g. :class:`LinearWeights`).
            proj (nn.Linear): Output projection C -> C (likewise).
            rope (RotaryPositions, optional): Rotate the patch tokens'
                queries (prompt keys are never rotated); runs direct.

        Returns:
            Tensor: Shape (B, N, C).
        """
        qkv_bias, proj_bias = self.biases(qkv.bias, proj.bias)
        # Folding is recomputed every forward: it costs O(h*m*d*C) per layer,
        # ~0.2% of a ViT-B forward, and a cache would have to follow every
        # in-place update, dtype, device and autocast change of its inputs.
        prepared = self.prepare(prompts, qkv.weight, qkv_bias, proj.weight,
                                rope is not None)
        return self.attend(x, prepared, qkv.weight, qkv_bias, proj.weight,
                           proj_bias, rope)

    def attention_probs(self,
                        x: Tensor,
                        prompts: Tensor,
                        qkv: nn.Linear,
                        rope: Optional[RotaryPositions] = None) -> Tensor:
        """Attention of every token to every prompt, for analysis.

        Takes the inputs of :meth:`forward` but ``proj``; bv and bo, the
        biases ``value_bias`` concerns, do not enter the scores.

        Returns:
            Tensor: Shape (B, h, N, m); each row sums to 1 over the m prompts.
        """
        h = self.num_heads
        d = x.shape[-1] // h
        q = _queries(x, qkv.weight, qkv.bias, h, rope).transpose(1, 2)
        k, _ = project_prompts(prompts, qkv.weight, qkv.bias, h)
        scores = q @ k.transpose(-2, -1) * d**-0.5  # (B, h, N, m)
        return scores.softmax(dim=-1)


def prompt_cross_attention(x: Tensor,
                           prompts: Tensor,
                           qkv_weight: Tensor,
                           qkv_bias: Optional[Tensor],
                           proj_weight: Tensor,
                           proj_bias: Optional[Tensor],
                           num_heads: int,
                           impl: str = 'auto') -> Tensor:
    """:class:`PromptCrossAttention` on bare weight tensors.

    Args:
        x (Tensor): Query tokens, shape (B, N, C).
        prompts (Tensor): Prompts of this layer, shape (m, C), or one set
            per sample, (B, m, C).
        qkv_weight (Tensor): Stacked q/k/v weight as in ``nn.Linear(C, 3C)``.
        qkv_bias (Tensor, optional): Stacked q/k/v bias, shape (3C, ).
        proj_weight (Tensor): Output projection weight, shape (C, C).
        proj_bias (Tensor, optional): Output projection bias, shape (C, ).
        num_heads (int): Number of heads.
        impl (str): 'folded', 'direct', or 'auto'. Defaults to 'auto'.

    Returns:
        Tensor: Shape (B, N, C).
    """
    op = PromptCrossAttention(num_heads, impl)
    return op(x, prompts, LinearWeights(qkv_weight, qkv_bias),
              LinearWeights(proj_weight, proj_bias))


def prompt_attention_probs(x: Tensor, prompts: Tensor, qkv_weight: Tensor,
                           qkv_bias: Optional[Tensor],
                           num_heads: int) -> Tensor:
    """:meth:`PromptCrossAttention.attention_probs` on bare weight tensors.

    Returns:
        Tensor: Shape (B, h, N, m); each row sums to 1 over the m prompts.
    """
    return PromptCrossAttention(num_heads).attention_probs(
        x, prompts, LinearWeights(qkv_weight, qkv_bias))
