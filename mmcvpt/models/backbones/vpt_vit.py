"""VPT-deep baseline on the same base class as CVPT.

Visual Prompt Tuning <https://arxiv.org/abs/2203.12119>.
"""
import torch

from ..layers import encoder_layer
from ..utils.register import register_backbone
from .prompted_vit import PromptedViT


@register_backbone
class VPTViT(PromptedViT):
    """VPT-deep: each layer's m prompts join the token sequence.

    The prompts are appended to the tokens (B, N, C) -> (B, N + m, C) before
    every layer and dropped after it. Self-attention has no positional bias,
    so appending is equivalent to VPT's insertion after the class token.
    Register tokens (``num_register_tokens``) are ordinary tokens here: the
    layers see (cls, registers, patches, prompts). With rotary positions
    (``rope``, DINOv3) the prompts are position-free tokens, as the class
    and storage tokens: only the patch tokens are rotated.

    Args:
        **kwargs: Arguments of :class:`PromptedViT` and of mmpretrain's
            VisionTransformer.
    """

    def forward_layer(self, index, layer, x, prompts, rope=None):
        B, N, _ = x.shape
        x = torch.cat((x, prompts.expand(B, -1, -1)), dim=1)
        return encoder_layer(layer, x, rope)[:, :N]
