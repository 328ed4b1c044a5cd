"""Plain-torch reference of a ViT with CVPT / VPT-deep prompts.

Written from the equations in CVPT_METHOD.md with per-head loops, reading
weights from an mmpretrain-layout state dict; shares no code with mmcvpt.

Foundation-model variants are read off the state dict: LayerScale
(``attn.gamma1`` / ``ffn.gamma2``, DINOv2), a SwiGLU FFN (``ffn.w12`` /
``ffn.w3``, DINOv2-g), a norm before the layers (``pre_norm``, CLIP), no
patch-embedding bias (CLIP) and register tokens (``register_tokens``,
DINOv2 with registers: inserted after the class token once the position
embedding is added, dropped from the output). With LayerScale the CVPT
cross-attention output is scaled by the block's ``gamma1``, as every output
of that attention's projection.

Rotary positions (DINOv3, no ``pos_embed`` in the state dict) are written
with complex numbers: channel i and i + d/2 of a head are one complex
number, multiplied by exp(i angle), the angle of the row (first d/4 pairs)
or column coordinate of the patch centre in [-1, 1].
"""
import math

import torch
import torch.nn.functional as F


def ref_rotation(grid, head_dims, base, start, dtype=torch.float64):
    """A function rotating per-head vectors (B, N, d) of a sequence whose
    patch tokens (grid (H, W), row-major) start at index ``start``."""
    H, W = grid
    d4 = head_dims // 4
    periods = torch.tensor([base**(4 * j / head_dims) for j in range(d4)],
                           dtype=dtype)
    angles = []
    for r in range(H):
        for c in range(W):
            row, col = 2 * (r + 0.5) / H - 1, 2 * (c + 0.5) / W - 1
            angles.append(torch.cat([2 * math.pi * row / periods,
                                     2 * math.pi * col / periods]))
    turn = torch.polar(torch.ones(H * W, 2 * d4, dtype=dtype),
                       torch.stack(angles))  # (HW, d/2) complex

    def rotate(t):
        half = head_dims // 2
        p = t[:, start:start + H * W]
        z = torch.complex(p[..., :half], p[..., half:]) * turn
        p = torch.cat([z.real, z.imag], dim=-1)
        return torch.cat([t[:, :start], p, t[:, start + H * W:]], dim=1)

    return rotate


def ref_attention(xq, xkv, qkv_w, qkv_b, proj_w, proj_b, num_heads,
                  rot_q=None, rot_k=None):
    """Multi-head attention of xq (B, N, C) over xkv (B, M, C), head loop;
    ``rot_q``/``rot_k`` rotate each head's queries/keys (B, N, d)."""
    C = xq.shape[-1]
    d = C // num_heads
    heads = []
    for h in range(num_heads):
        rows = slice(h * d, (h + 1) * d)
        wq, wk, wv = (qkv_w[i * C:(i + 1) * C][rows] for i in range(3))
        bq, bk, bv = (qkv_b[i * C:(i + 1) * C][rows] if qkv_b is not None
                      else torch.zeros(d) for i in range(3))
        q = xq @ wq.T + bq
        k = xkv @ wk.T + bk
        v = xkv @ wv.T + bv
        q = q if rot_q is None else rot_q(q)
        k = k if rot_k is None else rot_k(k)
        a = torch.softmax(q @ k.transpose(-1, -2) / d**0.5, dim=-1)
        heads.append(a @ v)
    return torch.cat(heads, dim=-1) @ proj_w.T + proj_b


def quick_gelu(t):
    """CLIP's activation."""
    return t * torch.sigmoid(1.702 * t)


def ref_block(x, sd, prefix, num_heads, prompts=None, position=None,
              ca_prefix=None, eps=1e-6, act=F.gelu, drop_path=None,
              rotate=None, ca_rotate=None):
    """One pre-norm ViT block; CVPT cross-attention at ``position``.

    ``rotate``: the rotation of the self-attention's queries and keys;
    ``ca_rotate``: that of the cross-attention's queries (prompt keys are
    never rotated).

    ``drop_path``: optional per-sample scales (B, ) of the attention branch
    and of the FFN branch (DropPath masks divided by their keep rate), put
    where the reference puts DropPath: around the self-attention (and the
    cross-attention in the parallel position) and around the FFN (with its
    cross-attention input in the in_ffn position).
    """
    ln = lambda t, n: F.layer_norm(  # noqa: E731
        t, t.shape[-1:], sd[f'{prefix}{n}.weight'], sd[f'{prefix}{n}.bias'],
        eps=eps)
    ap = ca_prefix or f'{prefix}attn.'
    one = torch.ones((), dtype=x.dtype)
    gamma1 = sd.get(f'{prefix}attn.gamma1.weight', one)
    gamma2 = sd.get(f'{prefix}ffn.gamma2.weight', one)

    def msa(t):
        return gamma1 * ref_attention(
            t, t, sd[f'{prefix}attn.qkv.weight'],
            sd.get(f'{prefix}attn.qkv.bias'), sd[f'{prefix}attn.proj.weight'],
            sd[f'{prefix}attn.proj.bias'], num_heads, rotate, rotate)

    def ca(t):
        p = prompts.expand(t.shape[0], -1, -1)
        return gamma1 * ref_attention(
            t, p, sd[f'{ap}qkv.weight'], sd.get(f'{ap}qkv.bias'),
            sd[f'{ap}proj.weight'], sd[f'{ap}proj.bias'], num_heads,
            ca_rotate)

    def ffn(t):
        if f'{prefix}ffn.w12.weight' in sd:  # SwiGLU: silu(x W1) * (x W2)
            h = t @ sd[f'{prefix}ffn.w12.weight'].T + \
                sd[f'{prefix}ffn.w12.bias']
            half = h.shape[-1] // 2
            t = F.silu(h[..., :half]) * h[..., half:]
            t = t @ sd[f'{prefix}ffn.w3.weight'].T + sd[f'{prefix}ffn.w3.bias']
        else:
            t = act(t @ sd[f'{prefix}ffn.layers.0.0.weight'].T +
                    sd[f'{prefix}ffn.layers.0.0.bias'])
            t = t @ sd[f'{prefix}ffn.layers.1.weight'].T + \
                sd[f'{prefix}ffn.layers.1.bias']
        return gamma2 * t

    def dp(branch, t):
        if drop_path is None:
            return t
        return t * drop_path[branch].view(-1, *([1] * (t.dim() - 1)))

    if position == 'before_attn':
        x = x + ca(x)
    if position == 'parallel':
        x = x + dp(0, msa(ln(x, 'ln1')) + ca(x))
    else:
        x = x + dp(0, msa(ln(x, 'ln1')))
    if position == 'after_attn':
        x = x + ca(x)
    if position == 'in_ffn':
        x = x + dp(1, ffn(ln(x, 'ln2') + ca(x)))
    else:
        x = x + dp(1, ffn(ln(x, 'ln2')))
    if position == 'after_ffn':
        x = x + ca(x)
    return x


def ref_vit(img, sd, num_layers, num_heads, patch_size, prompts=None,
            position=None, vpt=False, separate_ca=False, eps=1e-6,
            act=F.gelu, drop_path=None, rope_base=None, ca_rope=True):
    """Tokens (B, 1 + HW, C) after the final norm (mmpretrain 'raw').

    ``prompts[i]`` is layer i's (m, C), or (B, m, C) per sample (dropout
    masks applied); ``drop_path[i]``: layer i's pair of per-sample scales
    (see :func:`ref_block`), None without DropPath. ``rope_base``: rotary
    positions of that base instead of ``pos_embed``; ``ca_rope``: the CVPT
    queries rotated too.
    """
    x = F.conv2d(img, sd['patch_embed.projection.weight'],
                 sd.get('patch_embed.projection.bias'), stride=patch_size)
    grid = x.shape[-2:]
    x = x.flatten(2).transpose(1, 2)
    B = x.shape[0]
    x = torch.cat([sd['cls_token'].expand(B, -1, -1), x], dim=1)
    regs = sd.get('register_tokens')
    R = 0 if regs is None else regs.shape[1]
    rotate = None
    if rope_base is None:
        x = x + sd['pos_embed']
    else:
        rotate = ref_rotation(grid, x.shape[-1] // num_heads, rope_base,
                              1 + R, x.dtype)
    if R:
        x = torch.cat([x[:, :1], regs.expand(B, -1, -1), x[:, 1:]], dim=1)
    if 'pre_norm.weight' in sd:
        x = F.layer_norm(x, x.shape[-1:], sd['pre_norm.weight'],
                         sd['pre_norm.bias'], eps=eps)
    for i in range(num_layers):
        prefix = f'layers.{i}.'
        dp = None if drop_path is None else drop_path[i]
        if prompts is None:
            x = ref_block(x, sd, prefix, num_heads, eps=eps, act=act,
                          drop_path=dp, rotate=rotate)
        elif vpt:
            # VPT-deep as in its paper: prompts right after the cls token
            # (before the registers, if any).
            # With rotary positions the prompts go last instead, as the
            # patch grid must stay one run of tokens (position-free
            # prompts: the order does not matter).
            p = prompts[i].expand(B, -1, -1)
            m = p.shape[1]
            if rotate is None:
                t = torch.cat([x[:, :1], p, x[:, 1:]], dim=1)
                t = ref_block(t, sd, prefix, num_heads, eps=eps, act=act,
                              drop_path=dp)
                x = torch.cat([t[:, :1], t[:, 1 + m:]], dim=1)
            else:
                t = torch.cat([x, p], dim=1)
                x = ref_block(t, sd, prefix, num_heads, eps=eps, act=act,
                              drop_path=dp, rotate=rotate)[:, :-m]
        else:
            x = ref_block(x, sd, prefix, num_heads, prompts[i], position,
                          f'cross_attn.{i}.' if separate_ca else None,
                          eps=eps, act=act, drop_path=dp, rotate=rotate,
                          ca_rotate=rotate if ca_rope else None)
    x = torch.cat([x[:, :1], x[:, 1 + R:]], dim=1)  # without the registers
    return F.layer_norm(x, x.shape[-1:], sd['ln1.weight'], sd['ln1.bias'],
                        eps=eps)
