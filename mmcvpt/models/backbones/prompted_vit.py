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


class PromptedViT(VisionTransformer):
    """Base class of prompt-tuned ViTs (CVPT, VPT-deep).

    It keeps every argument, behaviour and state-dict key of mmpretrain's
    :class:`VisionTransformer` and adds a single parameter ``prompts`` of
    shape (num_layers, m, C). Subclasses only define how one encoder layer
    uses its prompts, in :meth:`forward_layer`.

    Args:
        num_prompts (int): Prompts per layer, m. 0 runs the plain ViT.
            Defaults to 10.
        prompt_dropout (float): Dropout on the prompts. The mask is drawn
            once per forward and shared by every sample of the batch (the
            reference code draws one per sample). Defaults to 0.1.
        freeze_backbone (bool): Set ``requires_grad=False`` on every
            pretrained parameter; the prompts stay trainable. Defaults to
            True.
        with_cp (bool): Gradient checkpointing of every layer, to save
            memory. Defaults to False.
        **kwargs: Arguments of mmpretrain's :class:`VisionTransformer`.
    """

    def __init__(self,
                 num_prompts: int = 10,
                 prompt_dropout: float = 0.1,
                 freeze_backbone: bool = True,
                 with_cp: bool = False,
                 **kwargs):
        if not isinstance(num_prompts, int) or num_prompts < 0:
            raise ValueError(f'num_prompts must be an int >= 0, got '
                             f'{num_prompts!r}')
        if not 0 <= prompt_dropout < 1:
            raise ValueError(f'prompt_dropout must be in [0, 1), got '
                             f'{prompt_dropout!r}')
        arch = kwargs.get('arch', 'base')
        num_layers = self._check_arch(arch)['num_layers']
        self._check_out_indices(kwargs.get('out_indices', -1), num_layers)
        super().__init__(**kwargs)

        self.num_prompts = num_prompts
        self.num_heads = self.arch_settings['num_heads']
        self.with_cp = with_cp
        self.prompt_dropout = nn.Dropout(prompt_dropout)
        if num_prompts > 0:
            self.prompts = nn.Parameter(
                torch.empty(self.num_layers, num_prompts, self.embed_dims))
            # Xavier-uniform per layer, fan_in=C, fan_out=m.
            bound = math.sqrt(6.0 / (num_prompts + self.embed_dims))
            nn.init.uniform_(self.prompts, -bound, bound)
        else:
            self.prompts = None
        self.freeze_backbone = freeze_backbone
        if freeze_backbone:
            self.requires_grad_(False)
            if self.prompts is not None:
                self.prompts.requires_grad_(True)

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
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            path = str(cfg.get('checkpoint'))
            if '://' not in path and not osp.isfile(path):
                raise FileNotFoundError(
                    f"pretrained backbone '{path}' not found; create it with "
                    '`python tools/model_converters/vit2mmcvpt.py '
                    f'ORIGINAL_VIT(.npz|.pth|.safetensors) {path}` (README: '
                    '"Pretrained weights")')
        super().init_weights()

    def forward_layer(self, index: int, layer: nn.Module, x: Tensor,
                      prompts: Tensor) -> Tensor:
        """Run encoder layer ``index`` with its prompts (m, C) on x (B, N, C).
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
        x = self.pre_norm(self.drop_after_pos(x))

        prompts: Optional[Tensor] = None
        if self.prompts is not None:
            prompts = self.prompt_dropout(self.prompts)  # (L, m, C)

        outs = []
        for i, layer in enumerate(self.layers):
            x = self._run_layer(i, layer, x, prompts)
            if i == len(self.layers) - 1 and self.final_norm:
                x = self.ln1(x)
            if i in self.out_indices:
                outs.append(self._format_output(x, patch_resolution))
        return tuple(outs)
