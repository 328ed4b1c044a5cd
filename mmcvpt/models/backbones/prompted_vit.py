"""A frozen mmpretrain VisionTransformer with one set of prompts per layer."""
import math
import os.path as osp
from typing import Optional, Sequence

import torch
import torch.nn as nn
from mmpretrain.models import VisionTransformer
from mmpretrain.models.utils import resize_pos_embed
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from ..utils.pretrained import (CheckpointError, file_sha256,
                                key_mismatch_causes, load_pretrained_state,
                                pretrained_keys, pretrained_source)

DROPOUT_MODES = ('sample', 'batch')
PROMPT_INITS = ('xavier', 'xavier_per_layer')
# State-dict entry (a dict, not a tensor) that marks a PEFT state dict: see
# :meth:`PromptedViT.peft_meta`.
PEFT_META_KEY = 'peft_meta'
# Signature entries (attribute: default) a PEFT state dict records only when
# not at the default.
OPTIONAL_SIGNATURE = dict(num_register_tokens=0)
# The parts of mmpretrain's VisionTransformer, and the registers, whose
# tensors a pretrained backbone file provides. Not among them: the prompts,
# modules a subclass adds (CVPTViT's cross_attn: random, or copied from the
# self-attention after the load) and ln2, the out_type='avg_featmap' norm
# that a converted file never has (timm's fc_norm is a head).
PRETRAINED_PARTS = ('patch_embed', 'cls_token', 'pos_embed', 'register_tokens',
                    'pre_norm', 'layers', 'ln1')


def check_choices(*choices) -> None:
    """ValueError for the first ``(name, value, allowed)`` not allowed."""
    for name, value, allowed in choices:
        if value not in allowed:
            raise ValueError(f'{name} must be one of {allowed}, got {value!r}')


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
        **kwargs: Arguments of mmpretrain's :class:`VisionTransformer`, e.g.
            DINOv2: ``arch='dinov2-s'|'b'|'l'|'dinov2-g'``, ``patch_size=14``,
            ``layer_scale_init_value=1e-5`` (and
            ``layer_cfgs=dict(ffn_type='swiglu_fused')`` for g); CLIP:
            ``pre_norm=True``, ``norm_cfg=dict(type='LN', eps=1e-5)``,
            ``layer_cfgs=dict(act_cfg=dict(type='mmpretrain.QuickGELU'))``.
    """
    OPTIONAL_SIGNATURE = OPTIONAL_SIGNATURE

    def __init__(self,
                 num_prompts: int = 10,
                 prompt_dropout: float = 0.1,
                 prompt_dropout_mode: str = 'sample',
                 prompt_init: str = 'xavier',
                 freeze_backbone: bool = True,
                 with_cp: bool = False,
                 num_register_tokens: int = 0,
                 **kwargs):
        for name, value in (('num_prompts', num_prompts),
                            ('num_register_tokens', num_register_tokens)):
            if not isinstance(value, int) or isinstance(value, bool) or \
                    value < 0:
                raise ValueError(f'{name} must be an int >= 0, got '
                                 f'{value!r}')
        if not 0 <= prompt_dropout < 1:
            raise ValueError(f'prompt_dropout must be in [0, 1), got '
                             f'{prompt_dropout!r}')
        check_choices(('prompt_dropout_mode', prompt_dropout_mode,
                       DROPOUT_MODES),
                      ('prompt_init', prompt_init, PROMPT_INITS))
        arch = kwargs.get('arch', 'base')
        num_layers = self._check_arch(arch)['num_layers']
        self._check_out_indices(kwargs.get('out_indices', -1), num_layers)
        if isinstance(kwargs.get('out_indices'), Sequence):
            # mmpretrain rewrites negative indices in place: a tuple fails
            # and a list from a config would be changed.
            kwargs['out_indices'] = list(kwargs['out_indices'])
        super().__init__(**kwargs)

        self.num_prompts = num_prompts
        self.num_heads = self.arch_settings['num_heads']
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
        # True only while init_weights loads init_cfg's pretrained file.
        self._loading_pretrained = False
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

    def _check_arch(self, arch):
        if isinstance(arch, str):
            if arch.lower() not in self.arch_zoo:
                raise ValueError(f'arch must be one of '
                                 f'{sorted(set(self.arch_zoo))} or a dict, '
                                 f'got {arch!r}')
            return self.arch_zoo[arch.lower()]
        keys = {
            'embed_dims', 'num_layers', 'num_heads', 'feedforward_channels'
        }
        if not isinstance(arch, dict) or not keys <= set(arch):
            raise ValueError(f'a custom arch must be a dict with keys '
                             f'{sorted(keys)}, got {arch!r}')
        return arch

    @staticmethod
    def _check_out_indices(out_indices, num_layers):
        indices = [out_indices] if isinstance(out_indices, int) else \
            out_indices
        if not isinstance(indices, Sequence) or not all(
                isinstance(i, int) and -num_layers <= i < num_layers
                for i in indices):
            raise ValueError(f'out_indices must be ints in [-{num_layers}, '
                             f'{num_layers - 1}] for {num_layers} layers, got '
                             f'{out_indices!r}')

    def init_weights(self):
        cfg = self.init_cfg
        pretrained = isinstance(cfg, dict) and cfg.get('type') == 'Pretrained'
        if pretrained:
            path = str(cfg.get('checkpoint'))
            if '://' not in path and not osp.isfile(path):
                raise FileNotFoundError(
                    f"pretrained backbone '{path}' not found; create it with "
                    '`python tools/model_converters/vit2mmcvpt.py '
                    f'ORIGINAL_VIT(.npz|.pth|.safetensors) {path}` (README: '
                    '"Pretrained weights")')
        # mmengine's PretrainedInit loads with strict=False and only warns
        # about missing and unexpected keys; the backbone's own file must fit
        # (see _check_pretrained_keys). Full checkpoints (load_from, resume,
        # init_model) keep mmengine's behaviour.
        self._loading_pretrained = pretrained
        try:
            super().init_weights()
        finally:
            self._loading_pretrained = False

    # ---- PEFT state dicts: frozen tensors come from the pretrained file ----
    def peft_signature(self) -> dict:
        """Arguments that change the function; a PEFT state dict must match.
        """
        kernel = self.patch_embed.projection.kernel_size
        signature = dict(
            backbone_type=type(self).__name__,
            arch=dict(
                embed_dims=self.embed_dims,
                num_layers=self.num_layers,
                num_heads=self.num_heads),
            patch_size=kernel[0] if kernel[0] == kernel[1] else list(kernel),
            num_prompts=self.num_prompts)
        # Entries at their default are left out, so that files saved before
        # the entry existed still match.
        for key, default in self.OPTIONAL_SIGNATURE.items():
            if getattr(self, key) != default:
                signature[key] = getattr(self, key)
        return signature

    def peft_meta(self, config: Optional[str] = None) -> dict:
        """:meth:`peft_signature` plus the pretrained file and its sha256."""
        meta = dict(self.peft_signature(), config=config, pretrained=None,
                    pretrained_sha256=None, pretrained_prefix=None)
        source = pretrained_source(self.init_cfg)
        if source is not None and osp.isfile(source[0]):
            meta.update(
                pretrained=source[0],
                pretrained_sha256=file_sha256(source[0]),
                pretrained_prefix=source[1])
        return meta

    def peft_rebuildable_keys(self) -> set:
        """State-dict keys that the pretrained file restores exactly (those a
        PEFT checkpoint may leave out); empty without a local file."""
        source = pretrained_source(self.init_cfg)
        if source is None or not osp.isfile(source[0]):
            return set()
        available = pretrained_keys(*source)
        return {k for k in self.state_dict() if k in available}

    def _derive_missing(self, state_dict: dict, prefix: str) -> None:
        """Fill keys computed from other keys (see CVPTViT 'copy')."""

    def check_peft_signature(self, meta: dict, source: str = '') -> None:
        """Raise CheckpointError unless ``meta`` fits this backbone."""
        own = self.peft_signature()
        for key in dict.fromkeys([*own, *self.OPTIONAL_SIGNATURE]):
            default = self.OPTIONAL_SIGNATURE.get(key)
            value, saved = own.get(key, default), meta.get(key, default)
            if saved != value:
                raise CheckpointError(
                    f'PEFT checkpoint {source}was saved for {key}='
                    f'{saved!r} but this model has {key}={value!r}; '
                    'use the config it was trained with '
                    f"({meta.get('config')})")

    def _verified_pretrained(self, meta: dict) -> str:
        """The local file with the recorded sha256: this model's own
        pretrained path first, then the one recorded at save time."""
        want = meta.get('pretrained_sha256')
        saved = meta.get('pretrained')
        own = pretrained_source(self.init_cfg)
        candidates = [c for c in (own and own[0], saved) if c]
        for path in dict.fromkeys(candidates):
            if osp.isfile(path):
                got = file_sha256(path)
                if got == want:
                    return path
                raise CheckpointError(
                    f"pretrained backbone '{path}' has sha256 {got[:16]}... "
                    f"but the PEFT checkpoint was trained on '{saved}' with "
                    f'sha256 {want}; use that file (model.backbone.init_cfg.'
                    'checkpoint)')
        raise CheckpointError(
            f"the PEFT checkpoint needs its pretrained backbone '{saved}' "
            f'(sha256 {want}) to rebuild the frozen tensors, and it is not '
            'there; put the file there or point model.backbone.init_cfg.'
            'checkpoint to it')

    def _complete_peft_state(self, state_dict: dict, prefix: str,
                             meta: dict, own: dict) -> None:
        """Add the frozen tensors a PEFT state dict left out."""
        self.check_peft_signature(meta)
        missing = [k for k in own if prefix + k not in state_dict]
        if not missing:
            return
        if meta.get('pretrained_sha256') is None:
            raise CheckpointError(
                f'the PEFT state dict lacks {prefix}{missing[0]} (and '
                f'{len(missing) - 1} more) and names no pretrained file to '
                'rebuild them from; it was not written by mmcvpt')
        path = self._verified_pretrained(meta)
        pretrained = load_pretrained_state(path, meta.get('pretrained_prefix'))
        for key in missing:
            if key in pretrained:
                state_dict[prefix + key] = pretrained[key]
        self._derive_missing(state_dict, prefix)
        still = [k for k in own if prefix + k not in state_dict]
        if still:
            raise CheckpointError(
                f"neither the PEFT state dict nor '{path}' has {prefix}"
                f'{still[0]} (and {len(still) - 1} more); the file is not the '
                'one the checkpoint was trained on')

    def _check_shapes(self, state_dict: dict, prefix: str,
                      own_state: dict) -> None:
        """A tensor of another shape means another config: refuse it instead
        of loading the rest around a randomly initialised tensor."""
        for key, own in own_state.items():
            value = state_dict.get(prefix + key)
            if key == 'pos_embed' or not isinstance(value, Tensor) or \
                    value.shape == own.shape:
                continue
            raise CheckpointError(
                f'{prefix}{key}: checkpoint shape {tuple(value.shape)} but '
                f'the model has {tuple(own.shape)}; '
                f'{self._shape_hint(key, value.shape, own.shape)}')

    def _shape_hint(self, key, ckpt_shape, own_shape) -> str:
        if key == 'prompts' and len(ckpt_shape) == 3:
            names = ('num_layers', 'num_prompts', 'embed_dims')
            diffs = [
                f'{n} {a} in the checkpoint, {b} in the config'
                for n, a, b in zip(names, ckpt_shape, own_shape) if a != b
            ]
            return 'the config differs: ' + ', '.join(diffs)
        if key == 'register_tokens' and len(ckpt_shape) == 3 and \
                ckpt_shape[2] == own_shape[2]:
            return (f'the checkpoint has {ckpt_shape[1]} register tokens; '
                    f'set num_register_tokens={ckpt_shape[1]}')
        return ('the checkpoint is for another backbone arch/patch_size '
                '(check model.backbone in the config)')

    def _check_registers(self, state_dict: dict, prefix: str) -> None:
        """Registers are part of the function: a backbone checkpoint (one
        with a pos_embed) with registers the model lacks, or without the
        registers the model has, would otherwise load with a warning only
        (init_cfg loads are not strict) and give wrong features."""
        key = prefix + 'register_tokens'
        if self.register_tokens is None and key in state_dict:
            shape = tuple(state_dict[key].shape)
            raise CheckpointError(
                f'{key}: the checkpoint has register tokens of shape {shape} '
                'but the model has num_register_tokens=0; set '
                f'num_register_tokens={shape[1]}')
        if self.register_tokens is not None and key not in state_dict and \
                prefix + 'pos_embed' in state_dict:
            raise CheckpointError(
                f'{key}: the model has num_register_tokens='
                f'{self.num_register_tokens} but the checkpoint has no '
                'register tokens; it is a model without registers (set '
                'num_register_tokens=0) or was converted without them')

    def _unused_by_config(self, key: str) -> bool:
        """Tensors of a pretrained file that the config leaves out on
        purpose: the class token without ``with_cls_token`` (mmpretrain also
        drops its position embedding), the final norm without
        ``final_norm`` (SETR) and ln2 outside ``out_type='avg_featmap'``."""
        return (key == 'cls_token' and not self.with_cls_token
                or key.startswith('ln1.') and not self.final_norm
                or key.startswith('ln2.') and self.out_type != 'avg_featmap')

    def _check_pretrained_keys(self, state_dict: dict, prefix: str,
                               own: dict) -> None:
        """init_cfg's pretrained file must provide every pretrained tensor
        of the model (:data:`PRETRAINED_PARTS`) and nothing else: a missing
        tensor stays random and an unused one (layer scale, pre_norm) means
        another network, both in a frozen backbone."""
        file_keys = [
            k[len(prefix):] for k in state_dict if k.startswith(prefix)
        ]
        have = set(file_keys)
        missing = [
            k for k in own
            if k.split('.', 1)[0] in PRETRAINED_PARTS and k not in have
        ]
        unexpected = [
            k for k in file_keys if k not in own and k != PEFT_META_KEY
            and not self._unused_by_config(k)
        ]
        if not missing and not unexpected:
            return
        path, file_prefix = self.init_cfg['checkpoint'], self.init_cfg.get(
            'prefix')
        where = f" (prefix '{file_prefix}')" if file_prefix else ''
        causes = key_mismatch_causes(missing, unexpected, file_keys, list(own))
        raise CheckpointError(
            f"pretrained backbone '{path}'{where} does not fit the config: "
            f"{'; '.join(causes)}; or use the checkpoint that matches the "
            'config')

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, unexpected_keys,
                              error_msgs):
        # Every loader (load_state_dict, mmengine's load_checkpoint used by
        # load_from, init_model, Inferencers, get_model) comes through here.
        own = self.state_dict()
        meta = state_dict.get(prefix + PEFT_META_KEY)
        if meta is not None:
            self._complete_peft_state(state_dict, prefix, meta, own)
        if self.prompts is None and prefix + 'prompts' in state_dict:
            raise CheckpointError(
                f"{prefix}prompts: the checkpoint has prompts of shape "
                f"{tuple(state_dict[prefix + 'prompts'].shape)} but the "
                'model has num_prompts=0; use the config it was trained with')
        self._check_registers(state_dict, prefix)
        self._check_shapes(state_dict, prefix, own)
        if self._loading_pretrained:
            self._check_pretrained_keys(state_dict, prefix, own)
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)
        if prefix + PEFT_META_KEY in unexpected_keys:
            unexpected_keys.remove(prefix + PEFT_META_KEY)

    def forward_layer(self, index: int, layer: nn.Module, x: Tensor,
                      prompts: Tensor) -> Tensor:
        """Run encoder layer ``index`` with its prompts on x (B, N, C).

        The prompts are (m, C), or (B, m, C) with per-sample dropout masks.
        """
        raise NotImplementedError

    def _run_layer(self, index, layer, x, prompts):
        if prompts is None:
            fn, args = layer, (x, )
        else:
            fn, args = self.forward_layer, (index, layer, x, prompts[index])
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
            x = self._run_layer(i, layer, x, prompts)
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
