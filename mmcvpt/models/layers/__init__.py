from .prompt_cross_attention import (IMPLS, DirectPrompts, LinearWeights,
                                     PromptCrossAttention, attend_direct,
                                     prompt_attention_probs,
                                     prompt_cross_attention)
from .prompt_folding import (FoldedPrompts, attend_folded, fold_prompts,
                             folded_is_cheaper)
from .prompt_projections import (AttentionProjections, project_prompts,
                                 project_queries)

__all__ = [
    'IMPLS', 'AttentionProjections', 'DirectPrompts', 'FoldedPrompts',
    'LinearWeights', 'PromptCrossAttention', 'attend_direct', 'attend_folded',
    'fold_prompts', 'folded_is_cheaper', 'project_prompts', 'project_queries',
    'prompt_attention_probs', 'prompt_cross_attention'
]
