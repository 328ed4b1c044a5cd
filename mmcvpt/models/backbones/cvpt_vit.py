"""CVPT backbone: a frozen ViT whose image tokens cross-attend to prompts.

CVPT: Cross Visual Prompt Tuning <https://arxiv.org/abs/2408.14961>.
"""
import torch
import torch.nn as nn
from torch import Tensor

from ..layers import (IMPLS, AttentionProjections, PromptCrossAttention,
                      encoder_layer, self_attention)
from ..utils.arg_checks import check_choices
from ..utils.register import register_backbone
from .prompted_vit import PromptedViT

# Where the cross-attention sits in a block; the reference code's insert
# positions 1-5 in this order. 'after_attn' (3) is the paper's default.
PROMPT_POSITIONS = ('before_attn', 'parallel', 'after_attn', 'in_ffn',
                    'after_ffn')
CROSS_ATTN_WEIGHTS = ('shared', 'copy', 'random')


@register_backbone
class CVPTViT(PromptedViT):
    """Cross Visual Prompt Tuning on mmpretrain's VisionTransformer.

    In every layer the image tokens x (B, N, C) attend to that layer's m
    prompts through a cross-attention; the sequence length stays N. With
    ``cross_attn_weights='shared'`` the cross-attention uses the layer's own
    frozen self-attention q/k/v/proj weights by reference (no new
    parameters). Pretrained state-dict keys are mmpretrain's.

    With LayerScale (``layer_scale_init_value > 0``, e.g. DINOv2) the
    cross-attention output is scaled by the block's attention LayerScale
    ``gamma1``, in every position and with every ``cross_attn_weights``: in
    these models every output of the attention's projection is scaled by it
    before it joins the stream, so the frozen scale is part of "the block's
    attention" that CVPT reuses.

    Args:
        prompt_position (str): One of ``PROMPT_POSITIONS``:
            'before_attn', 'parallel', 'after_attn', 'in_ffn', 'after_ffn'
            (the reference's insert positions 1-5). Defaults to 'after_attn'.
        cross_attn_weights (str): 'shared' (the self-attention's weights),
            'copy' (a separate copy, filled from the self-attention after
            pretrained weights are loaded) or 'random' (own initialisation).
            Defaults to 'shared'.
        train_cross_attn (bool): Train the separate cross-attention weights
            ('copy'/'random' only). Defaults to False.
        cross_attn_impl (str): 'auto', 'folded' or 'direct'; see
            :func:`prompt_cross_attention`. Defaults to 'auto'.
        cross_attn_value_bias (bool): Keep the value and output biases
            (bv, bo) in the cross-attention, as the paper. Because every
            softmax row sums to one, ``CA(x, P) = softmax(.) P Wv Wo +
            (bv Wo + bo)``: the bracket shifts the residual stream of every
            block by a constant whatever the prompts are. False drops it, so
            that CA vanishes with the prompts and the tuned model starts
            next to the frozen one (docs/real_transfer.md). Defaults to True.
        cross_attn_gate (bool): Multiply each layer's cross-attention output
            by a learnable scalar ``cross_attn_gates[l]`` initialised to 0:
            the tuned model starts exactly at the frozen one. Defaults to
            False.
        cross_attn_rope (bool): With rotary positions (``rope``, DINOv3):
            rotate the patch tokens' queries of the cross-attention as the
            block's self-attention rotates them, prompt keys unrotated (the
            prompts are position-free, as DINOv3's storage tokens, whose
            keys the block never rotates); it runs the direct form. False
            uses unrotated queries, which the folded form can take (cheaper
            at small m). No effect without ``rope``. Defaults to True
            (docs/dinov3.md).
        **kwargs: Arguments of :class:`PromptedViT` (num_prompts,
            prompt_dropout, prompt_dropout_mode, prompt_init,
            freeze_backbone, with_cp) and of mmpretrain's
            VisionTransformer.
    """

    # PEFT signature: always recorded, and recorded when not at the default.
    SIGNATURE = PromptedViT.SIGNATURE + ('prompt_position',
                                         'cross_attn_weights')
    OPTIONAL_SIGNATURE = dict(
        PromptedViT.OPTIONAL_SIGNATURE,
        cross_attn_value_bias=True,
        cross_attn_gate=False,
        cross_attn_rope=True)

    def __init__(self,
                 prompt_position: str = 'after_attn',
                 cross_attn_weights: str = 'shared',
                 train_cross_attn: bool = False,
                 cross_attn_impl: str = 'auto',
                 cross_attn_value_bias: bool = True,
                 cross_attn_gate: bool = False,
                 cross_attn_rope: bool = True,
                 **kwargs):
        check_choices(('prompt_position', prompt_position, PROMPT_POSITIONS),
                      ('cross_attn_weights', cross_attn_weights,
                       CROSS_ATTN_WEIGHTS),
                      ('cross_attn_impl', cross_attn_impl, IMPLS))
        if train_cross_attn and cross_attn_weights == 'shared':
            raise ValueError(
                "train_cross_attn=True needs cross_attn_weights 'copy' or "
                "'random'; with 'shared' the weights are the frozen "
                'self-attention')
        if cross_attn_impl == 'folded' and cross_attn_rope and \
                kwargs.get('rope') is not None:
            raise ValueError(
                "cross_attn_impl='folded' cannot rotate the queries by their "
                "positions (rope with cross_attn_rope=True); use 'auto' or "
                "'direct', or cross_attn_rope=False")
        super().__init__(**kwargs)
        self.cross_attn_rope = bool(cross_attn_rope)
        self.prompt_position = prompt_position
        self.cross_attn_weights = cross_attn_weights
        self.train_cross_attn = train_cross_attn
        self.cross_attn_impl = cross_attn_impl
        self.cross_attn_value_bias = bool(cross_attn_value_bias)
        self.cross_attn_gate = bool(cross_attn_gate)
        self.cross_attn_gates = None
        if self.cross_attn_gate and self.num_prompts > 0:
            self.cross_attn_gates = nn.Parameter(torch.zeros(self.num_layers))
        # One parameter-free op per layer (no state-dict entries): analysis
        # tools hook ``cross_attn_ops[i]`` to see its (x, prompts, qkv, proj).
        self.cross_attn_ops = nn.ModuleList(
            PromptCrossAttention(self.num_heads, cross_attn_impl,
                                 self.cross_attn_value_bias)
            for _ in range(self.num_layers))

        self.cross_attn = None
        if cross_attn_weights != 'shared' and self.num_prompts > 0:
            qkv_bias = self.layers[0].attn.qkv.bias is not None
            self.cross_attn = nn.ModuleList(
                AttentionProjections(self.embed_dims, qkv_bias)
                for _ in range(self.num_layers))
            if cross_attn_weights == 'copy':
                self._copy_self_attn()
                self._register_load_state_dict_pre_hook(
                    self._fill_missing_cross_attn)
            self.cross_attn.requires_grad_(train_cross_attn
                                           or not self.freeze_backbone)

    @torch.no_grad()
    def _copy_self_attn(self):
        for layer, ca in zip(self.layers, self.cross_attn):
            ca.load_state_dict({
                k: v
                for k, v in layer.attn.state_dict().items()
                if k.startswith(('qkv.', 'proj.'))
            })

    def init_weights(self):
        super().init_weights()
        # 'copy' means a copy of the weights the model ends up with, i.e.
        # after an init_cfg Pretrained checkpoint has been loaded.
        if self.cross_attn_weights == 'copy' and self.cross_attn is not None:
            self._copy_self_attn()

    def _fill_missing_cross_attn(self, state_dict, prefix, *args, **kwargs):
        """Loading a plain ViT checkpoint (load_from, resume from mmpretrain
        weights): take the copy from the self-attention being loaded."""
        for i in range(self.num_layers):
            for name in ('qkv.weight', 'qkv.bias', 'proj.weight', 'proj.bias'):
                dst = f'{prefix}cross_attn.{i}.{name}'
                src = f'{prefix}layers.{i}.attn.{name}'
                if dst not in state_dict and src in state_dict:
                    state_dict[dst] = state_dict[src]

    def derive_missing(self, state_dict, prefix):
        """'copy': the copies the load pre-hook makes from the
        self-attention (a PEFT state dict rebuilt from the pretrained file).
        """
        if self.cross_attn_weights == 'copy' and self.cross_attn is not None:
            self._fill_missing_cross_attn(state_dict, prefix)

    def cross_attention(self,
                        index: int,
                        layer: nn.Module,
                        x: Tensor,
                        prompts: Tensor,
                        rope=None) -> Tensor:
        """Tokens x (B, N, C) attend to prompts (m, C) or (B, m, C) ->
        (B, N, C) through ``cross_attn_ops[index]``, gated if
        ``cross_attn_gate`` and scaled by the block's attention LayerScale
        (identity without one); the queries rotated by ``rope`` if
        ``cross_attn_rope``. The op's inputs, as a forward hook sees them:
        (x, prompts, qkv, proj, rope or None)."""
        src = layer.attn if self.cross_attn is None else self.cross_attn[index]
        rope = rope if self.cross_attn_rope else None
        out = self.cross_attn_ops[index](x, prompts, src.qkv, src.proj, rope)
        if self.cross_attn_gates is not None:
            out = out * self.cross_attn_gates[index]
        return layer.attn.gamma1(out)

    def forward_layer(self, index, layer, x, prompts, rope=None):
        position = self.prompt_position
        if position == 'before_attn':
            x = x + self.cross_attention(index, layer, x, prompts, rope)
            return encoder_layer(layer, x, rope)
        if position == 'after_ffn':
            x = encoder_layer(layer, x, rope)
            return x + self.cross_attention(index, layer, x, prompts, rope)
        if position == 'parallel':
            # DropPath once, on the sum of both attentions
            msa = self_attention(layer.attn, layer.ln1(x), rope, False)
            ca = self.cross_attention(index, layer, x, prompts, rope)
            x = x + layer.attn.out_drop(msa + ca)
            return layer.ffn(layer.ln2(x), identity=x)
        x = x + self_attention(layer.attn, layer.ln1(x), rope)
        if position == 'after_attn':
            x = x + self.cross_attention(index, layer, x, prompts, rope)
            return layer.ffn(layer.ln2(x), identity=x)
        # 'in_ffn': the cross-attention joins the FFN's normalised input.
        ca = self.cross_attention(index, layer, x, prompts, rope)
        return layer.ffn(layer.ln2(x) + ca, identity=x)
