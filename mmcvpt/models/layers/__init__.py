from .prompt_cross_attention import (IMPLS, DirectPrompts, LinearWeights,
                                     PromptCrossAttention, attend_direct,
                                     prompt_attention_probs,
                                     prompt_cross_attention)
from .prompt_folding import (FoldedPrompts, attend_folded, fold_prompts,
                             folded_is_cheaper)
from .prompt_projections import (AttentionProjections, project_prompts,
                                 project_queries)
from .rotary import DINOv3RoPE, RotaryPositions, rotate_tokens
from .self_attention import encoder_layer, self_attention

__all__ = [
    'IMPLS', 'AttentionProjections', 'DINOv3RoPE', 'DirectPrompts',
    'FoldedPrompts', 'LinearWeights', 'PromptCrossAttention',
    'RotaryPositions', 'attend_direct', 'attend_folded', 'encoder_layer',
    'fold_prompts', 'folded_is_cheaper', 'project_prompts', 'project_queries',
    'prompt_attention_probs', 'prompt_cross_attention', 'rotate_tokens',
    'self_attention'
]
