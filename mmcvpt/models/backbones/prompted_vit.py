"""A frozen mmpretrain VisionTransformer with one set of prompts per layer."""
import math
from typing import Optional, Sequence

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmengine.model.weight_init import initialize
from mmpretrain.models import VisionTransformer
from mmpretrain.models.utils import resize_pos_embed
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from ...peft.load_checks import check_state_fits
from ...peft.state import PEFT_META_KEY, complete_peft_state
from ...peft.strict_pretrained import is_strict_pretrained
from ..layers import DINOv3RoPE, RotaryPositions, encoder_layer
from ..utils.arg_checks import (check_arch, check_choices, check_counts,
                                check_out_indices, check_rope)
from .dinov3_archs import DINOV3_ARCHS, apply_arch_defaults

DROPOUT_MODES = ('sample', 'batch')
PROMPT_INITS = ('xavier', 'xavier_per_layer')


class PromptedViT(VisionTransformer):
    """Base class of prompt-tuned ViTs (CVPT, VPT-deep).

    It keeps every argument, behaviour and state-dict key of mmpretrain's
    :class:`VisionTransformer` and adds a single parameter ``prompts`` of
    shape (num_layers, m, C). Subclasses only define how one encoder layer
    uses its prompts, in :meth:`forward_layer`.

    Args:
        num_prompts (int): Prompts per layer, m. 0 runs the plain ViT.
            Defaults to 10.
        prompt_dropout (float): Dropout on the prompts. Defaults to 0.1.
        prompt_dropout_mode (str): 'sample': one mask per sample, as the
            reference code (dropout after expanding the prompts to the
            batch); 'batch': one mask per forward shared by the batch (a
            weaker regulariser, slightly faster at large m). Defaults to
            'sample'.
        prompt_init (str): 'xavier': ``xavier_uniform_`` on the whole
            (L, m, C) tensor as the reference code, bound
            sqrt(6 / ((m + L) * C)); 'xavier_per_layer': each layer's (m, C)
            on its own, bound sqrt(6 / (m + C)). Defaults to 'xavier'.
        freeze_backbone (bool): Set ``requires_grad=False`` on every
            pretrained parameter; the prompts stay trainable. Defaults to
            True.
        with_cp (bool): Gradient checkpointing of every layer, to save
            memory. Defaults to False.
        num_register_tokens (int): Register tokens R, as DINOv2 with
            registers (<https://arxiv.org/abs/2309.16588>): a frozen
            parameter ``register_tokens`` (1, R, C) inserted right after the
            class token once the position embedding is added (registers
            have none), processed by every layer like any token, and removed
            before the outputs are formatted. 0 adds nothing. Defaults to 0.
        rope (dict, optional): Rotary positions instead of the absolute
            position embedding, as DINOv3: ``dict(base=100.)`` (and
            ``normalize_coords``, see :class:`DINOv3RoPE`). The patch
            tokens' queries and keys are rotated in every self-attention;
            class, register and (VPT-deep) prompt tokens are position-free.
            There is no ``pos_embed`` and any input size works. None keeps
            mmpretrain's ``pos_embed``. Defaults to None.
        **kwargs: Arguments of mmpretrain's :class:`VisionTransformer`, e.g.
            DINOv2: ``arch='dinov2-s'|'b'|'l'|'dinov2-g'``, ``patch_size=14``,
            ``layer_scale_init_value=1e-5`` (and
            ``layer_cfgs=dict(ffn_type='swiglu_fused')`` for g); CLIP:
            ``pre_norm=True``, ``norm_cfg=dict(type='LN', eps=1e-5)``,
            ``layer_cfgs=dict(act_cfg=dict(type='mmpretrain.QuickGELU'))``;
            DINOv3: ``arch='dinov3-s'|'s+'|'b'|'l'|'h+'|'7b'`` (see
            ``DINOV3_ARCHS``; they set the FFN type and qkv bias),
            ``patch_size=16``, ``layer_scale_init_value=1e-5``,
            ``num_register_tokens=4``, ``rope=dict(base=100.)``,
            ``norm_cfg=dict(type='LN', eps=1e-5)``.
    """
    arch_zoo = {**VisionTransformer.arch_zoo, **DINOV3_ARCHS}
    # PEFT signature (mmcvpt.peft.peft_signature): attributes always
    # recorded, and (attribute: default) recorded when not at the default.
    SIGNATURE = ('num_prompts', )
    OPTIONAL_SIGNATURE = dict(num_register_tokens=0, rope_cfg=None)
    # What a pretrained backbone file provides (StrictPretrained requires
    # it): not the prompts, modules a subclass adds (CVPTViT's cross_attn),
    # nor ln2, the out_type='avg_featmap' norm (timm's fc_norm is a head).
    PRETRAINED_PARTS = ('patch_embed', 'cls_token', 'pos_embed',
                        'register_tokens', 'pre_norm', 'layers', 'ln1')

    def __init__(self,
                 num_prompts: int = 10,
                 prompt_dropout: float = 0.1,
                 prompt_dropout_mode: str = 'sample',
                 prompt_init: str = 'xavier',
                 freeze_backbone: bool = True,
                 with_cp: bool = False,
                 num_register_tokens: int = 0,
                 rope: Optional[dict] = None,
                 **kwargs):
        check_counts(
            num_prompts=num_prompts, num_register_tokens=num_register_tokens)
        if not 0 <= prompt_dropout < 1:
            raise ValueError(f'prompt_dropout must be in [0, 1), got '
                             f'{prompt_dropout!r}')
        check_choices(('prompt_dropout_mode', prompt_dropout_mode,
                       DROPOUT_MODES),
                      ('prompt_init', prompt_init, PROMPT_INITS))
        arch_settings = check_arch(kwargs.get('arch', 'base'), self.arch_zoo)
        check_rope(rope, arch_settings)
        apply_arch_defaults(arch_settings, kwargs)
        num_layers = arch_settings['num_layers']
        check_out_indices(kwargs.get('out_indices', -1), num_layers)
        if isinstance(kwargs.get('out_indices'), Sequence):
            # mmpretrain rewrites negative indices in place: a tuple fails
            # and a list from a config would be changed.
            kwargs['out_indices'] = list(kwargs['out_indices'])
        super().__init__(**kwargs)

        self.num_prompts = num_prompts
        self.num_heads = self.arch_settings['num_heads']
        self.rope_cfg = None if rope is None else dict(rope)
        self.rope = None
        if rope is not None:
            # No absolute positions: mmpretrain's loaders, init and freezing
            # all skip a pos_embed that is None.
            self.pos_embed = None
            self.rope = DINOv3RoPE(self.embed_dims // self.num_heads, **rope)
        self.with_cp = with_cp
        self.prompt_dropout = nn.Dropout(prompt_dropout)
        self.prompt_dropout_mode = prompt_dropout_mode
        self.prompt_init = prompt_init
        self.prompts = None
        if num_prompts > 0:
            self.prompts = nn.Parameter(
                torch.empty(self.num_layers, num_prompts, self.embed_dims))
            self.init_prompts()
        self.num_register_tokens = num_register_tokens
        if num_register_tokens > 0:
            # DINOv2's initialisation; pretrained files overwrite it.
            self.register_tokens = nn.Parameter(
                torch.randn(1, num_register_tokens, self.embed_dims) * 1e-6)
        else:
            self.register_tokens = None
        if self.register_tokens is not None and self.frozen_stages > 0:
            # mmpretrain's _freeze_stages freezes the other embeddings.
            self.register_tokens.requires_grad_(False)
        self.freeze_backbone = freeze_backbone
        if freeze_backbone:
            self.requires_grad_(False)
            if self.prompts is not None:
                self.prompts.requires_grad_(True)

    @torch.no_grad()
    def init_prompts(self) -> None:
        """Draw the prompts (L, m, C) by ``prompt_init``."""
        if self.prompt_init == 'xavier':
            # torch's fans of a 3-D tensor: fan_in = m*C, fan_out = L*C
            nn.init.xavier_uniform_(self.prompts)
        else:
            bound = math.sqrt(6.0 / (self.num_prompts + self.embed_dims))
            nn.init.uniform_(self.prompts, -bound, bound)

    def init_weights(self):
        cfg = self.init_cfg
        if not is_strict_pretrained(cfg):
            return super().init_weights()
        # As mmengine's 'Pretrained': loaded after the children's own
        # initialisation, without mmpretrain's random position embedding.
        self.init_cfg = None
        try:
            BaseModule.init_weights(self)
        finally:
            self.init_cfg = cfg
        initialize(self, cfg)

    def derive_missing(self, state_dict: dict, prefix: str) -> None:
        """Fill keys computed from other keys (see CVPTViT 'copy')."""

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, unexpected_keys,
                              error_msgs):
        # Every loader (load_state_dict, mmengine's load_checkpoint used by
        # load_from, init_model, Inferencers, get_model) comes through here:
        # a PEFT state dict is completed, any state dict checked. The
        # entry at <prefix>peft_meta is the in-memory form: mmcvpt's
        # local loader puts it there from the file's meta['peft']
        # (mmcvpt.peft.file_format); older files have it in the file.
        own = self.state_dict()
        meta = state_dict.get(prefix + PEFT_META_KEY)
        if meta is not None:
            complete_peft_state(self, state_dict, prefix, meta, own)
        check_state_fits(self, state_dict, prefix, own)
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)
        if prefix + PEFT_META_KEY in unexpected_keys:
            unexpected_keys.remove(prefix + PEFT_META_KEY)

    def forward_layer(self,
                      index: int,
                      layer: nn.Module,
                      x: Tensor,
                      prompts: Tensor,
                      rope: Optional[RotaryPositions] = None) -> Tensor:
        """Run encoder layer ``index`` with its prompts on x (B, N, C).

        The prompts are (m, C), or (B, m, C) with per-sample dropout masks;
        ``rope`` is the rotation of the patch tokens (None without ``rope``).
        """
        raise NotImplementedError

    def _run_layer(self, index, layer, x, prompts, rope):
        if prompts is None:
            fn, args = encoder_layer, (layer, x, rope)
        else:
            fn, args = self.forward_layer, (index, layer, x, prompts[index],
                                            rope)
        if self.with_cp and torch.is_grad_enabled():
            return checkpoint(fn, *args, use_reentrant=False)
        return fn(*args)

    def forward(self, x: Tensor):
        # The embedding steps are mmpretrain's VisionTransformer.forward; only
        # the layer loop differs, and the parent offers no hook inside it.
        B = x.shape[0]
        x, patch_resolution = self.patch_embed(x)
        if self.cls_token is not None:
            x = torch.cat((self.cls_token.expand(B, -1, -1), x), dim=1)
        if self.pos_embed is not None:
            x = x + resize_pos_embed(
                self.pos_embed,
                self.patch_resolution,
                patch_resolution,
                mode=self.interpolate_mode,
                num_extra_tokens=self.num_extra_tokens)
        if self.register_tokens is not None:
            # (B, 1 + HW, C) -> (B, 1 + R + HW, C), as DINOv2: after the
            # position embedding, which covers the class token and patches.
            n = self.num_extra_tokens
            x = torch.cat((x[:, :n], self.register_tokens.expand(B, -1, -1),
                           x[:, n:]), dim=1)
        x = self.pre_norm(self.drop_after_pos(x))
        rope = None
        if self.rope is not None:
            # (cls, registers, patches): the patches start after both
            rope = self.rope(patch_resolution,
                             self.num_extra_tokens + self.num_register_tokens,
                             x.device, torch.promote_types(
                                 x.dtype, torch.float32))

        prompts: Optional[tuple] = None
        if self.prompts is not None:
            prompts = self.prompts  # (L, m, C)
            if self.training and self.prompt_dropout.p > 0 and \
                    self.prompt_dropout_mode == 'sample':
                prompts = prompts.unsqueeze(1).expand(-1, B, -1, -1)
            # one tensor per layer: indexing the (L, ...) tensor per layer
            # would give each layer a zero-filled gradient of all of it
            prompts = self.prompt_dropout(prompts).unbind(0)  # L x ([B,] m, C)

        outs = []
        for i, layer in enumerate(self.layers):
            x = self._run_layer(i, layer, x, prompts, rope)
            if i == len(self.layers) - 1 and self.final_norm:
                x = self.ln1(x)
            if i in self.out_indices:
                outs.append(self._format_output(x, patch_resolution))
        return tuple(outs)

    def _format_output(self, x: Tensor, hw):
        if self.register_tokens is not None:
            # Outputs never include the registers: (B, 1 + R + HW, C) ->
            # (B, 1 + HW, C), then mmpretrain's formatting.
            n = self.num_extra_tokens
            x = torch.cat((x[:, :n], x[:, n + self.num_register_tokens:]),
                          dim=1)
        return super()._format_output(x, hw)

    def get_layer_depth(self, param_name: str, prefix: str = ''):
        # Layer-wise lr decay: registers are embeddings, like cls_token.
        if param_name == prefix + 'register_tokens':
            return 0, self.num_layers + 2
        return super().get_layer_depth(param_name, prefix)
