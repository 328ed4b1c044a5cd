from .prompt_cross_attention import (AttentionProjections, attend_prompts,
                                     fold_prompts, folded_is_cheaper,
                                     prepare_prompts, prompt_attention_probs,
                                     prompt_cross_attention)

__all__ = [
    'AttentionProjections', 'attend_prompts', 'fold_prompts',
    'folded_is_cheaper', 'prepare_prompts', 'prompt_attention_probs',
    'prompt_cross_attention'
]
