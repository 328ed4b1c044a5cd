from .prompt_cross_attention import (AttentionProjections, fold_prompts,
                                     folded_is_cheaper,
                                     prompt_cross_attention)

__all__ = [
    'AttentionProjections', 'fold_prompts', 'folded_is_cheaper',
    'prompt_cross_attention'
]
