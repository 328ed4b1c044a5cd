from .cvpt_vit import CROSS_ATTN_WEIGHTS, PROMPT_POSITIONS, CVPTViT
from .prompted_vit import PromptedViT
from .vpt_vit import VPTViT

__all__ = [
    'PromptedViT', 'CVPTViT', 'VPTViT', 'PROMPT_POSITIONS',
    'CROSS_ATTN_WEIGHTS'
]
