"""Speed and memory of CVPTViT and VPTViT against the frozen ViT they tune.

Every variant is timed in the same process, interleaved round by round (all
inference rounds first, then all train-step rounds), so machine noise hits
all of them alike; the table shows medians and ratios to
the frozen ViT. A train step is forward + backward + AdamW on the trainable
tensors (prompts and a linear head). For the frozen ViT the head trains and
the gradient still flows back through the whole backbone (the input tokens
require grad): that backward is the floor of any method that tunes something
in the first block, so the ratios show what the prompts themselves cost.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` of a train step; on
CPU the peak resident set size (VmHWM) of a fresh child process that builds
the variant and runs two train steps.

``--arch dinov2-b`` is DINOv2-B/14 with 4 registers (patch 14, LayerScale,
``dinov2_vitb14_reg4``), at its pretraining size with ``--img 518`` (37x37 =
1369 patches). ``--arch dinov3-b`` is DINOv3-B/16 (rotary positions, 4
storage tokens, LayerScale; 1024 patches + 5 tokens with ``--img 512``);
there ``cvptM`` rotates the patch queries of the cross-attention (the
default, direct form) and ``cvpt_noropeM`` does not
(``cross_attn_rope=False``, foldable). The frozen ViT is the same backbone
class with no prompts (registers included), every weight frozen.

Examples::

    python tools/analysis_tools/benchmark_backbone.py --prompts 10 200
    python tools/analysis_tools/benchmark_backbone.py --arch dinov2-b \
        --img 518 --batch-size 1 --only cvpt10 cvpt200 vpt200
    python tools/analysis_tools/benchmark_backbone.py --arch dinov3-b \
        --img 512 --batch-size 1 --only cvpt10 cvpt_norope10 cvpt200 \
        cvpt_norope200 vpt200
"""
import argparse
import json
import re
import statistics
import subprocess
import sys
import time

import torch
import torch.nn as nn

TINY = dict(embed_dims=64, num_layers=2, num_heads=4, feedforward_channels=128)
# --arch -> backbone arguments shared by every variant
ARCHS = {
    'b':
    dict(arch='b'),  # ViT-B/16
    # DINOv2-B/14 with registers (dinov2_vitb14_reg4)
    'dinov2-b':
    dict(
        arch='b',
        patch_size=14,
        layer_scale_init_value=1e-5,
        num_register_tokens=4),
    # DINOv3-B/16 (dinov3_vitb16_pretrain_lvd1689m)
    'dinov3-b':
    dict(
        arch='dinov3-b',
        patch_size=16,
        layer_scale_init_value=1e-5,
        num_register_tokens=4,
        rope=dict(base=100.),
        norm_cfg=dict(type='LN', eps=1e-5)),
    # for quick checks of the tool itself
    'tiny':
    dict(arch=TINY),
    'tiny-dinov3':
    dict(
        arch=TINY,
        patch_size=16,
        layer_scale_init_value=1e-5,
        num_register_tokens=4,
        rope=dict(base=100.)),
    'tiny-dinov2':
    dict(
        arch=TINY,
        patch_size=14,
        layer_scale_init_value=1e-5,
        num_register_tokens=4),
}
VARIANT = re.compile(r'(cvpt|cvpt_batchdrop|cvpt_norope|vpt)(\d+)')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--arch', default='b', choices=sorted(ARCHS))
    parser.add_argument(
        '--prompts', type=int, nargs='+', default=[10, 50, 200])
    parser.add_argument(
        '--variants',
        nargs='+',
        default=['cvpt', 'vpt'],
        choices=['cvpt', 'cvpt_batchdrop', 'cvpt_norope', 'vpt'],
        help='prompted variants; the frozen ViT is always measured. cvpt '
        'and vpt use the default per-sample prompt dropout; cvpt_batchdrop '
        "is CVPT with prompt_dropout_mode='batch' (one mask per batch); "
        'cvpt_norope is CVPT with cross_attn_rope=False (rotary archs)')
    parser.add_argument(
        '--only',
        nargs='+',
        metavar='NAME',
        help='measure these prompted variants (e.g. cvpt10 cvpt200 vpt200) '
        'instead of every --prompts x --variants pair')
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--img-size', '--img', type=int, default=224)
    parser.add_argument('--rounds', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument(
        '--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--no-memory', action='store_true')
    parser.add_argument('--json', help='also write the results here')
    parser.add_argument('--memory-probe', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in args.only or []:
        if not VARIANT.fullmatch(name):
            parser.error(f'--only: {name!r} is not cvptM, cvpt_batchdropM, '
                         'cvpt_noropeM or vptM')
        if name.startswith('cvpt_norope') and \
                'rope' not in ARCHS[args.arch]:
            parser.error(f'--only: {name} needs an arch with rotary '
                         f'positions (dinov3-b, tiny-dinov3), not {args.arch}')
    # the memory probe re-runs this command line in a child process
    args.argv = list(sys.argv[1:] if argv is None else argv)
    return args


def variant_names(args):
    """'frozen' first, then the prompted variants to measure."""
    prompted = args.only or [
        f'{v}{m}' for m in args.prompts for v in args.variants
    ]
    return ['frozen'] + prompted


def build(name, args):
    """Backbone + linear head for variant 'frozen', 'cvpt10', 'vpt200',
    'cvpt_batchdrop10'..."""
    from mmcvpt.models import CVPTViT, VPTViT
    common = dict(ARCHS[args.arch], img_size=args.img_size, drop_path_rate=0.1)
    if name == 'frozen':
        # No prompts: mmpretrain's layers alone (plus the arch's registers),
        # every weight frozen.
        backbone = CVPTViT(num_prompts=0, **common)
    else:
        kind, m = VARIANT.fullmatch(name).groups()
        cls = VPTViT if kind == 'vpt' else CVPTViT
        mode = 'batch' if kind == 'cvpt_batchdrop' else 'sample'
        extra = dict(cross_attn_rope=False) if kind == 'cvpt_norope' else {}
        backbone = cls(num_prompts=int(m), prompt_dropout_mode=mode,
                       **common, **extra)
    head = nn.Linear(backbone.embed_dims, 100)
    model = nn.ModuleDict(dict(backbone=backbone, head=head)).to(args.device)
    optim = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=1e-3)
    return model, optim


def infer(model, x):
    with torch.no_grad():
        return model['head'](model['backbone'](x)[-1])


def train_step(model, optim, x, y):
    if not any(p.requires_grad for p in model['backbone'].parameters()):
        x = x.detach().requires_grad_(True)  # frozen ViT: full backward
    loss = nn.functional.cross_entropy(model['head'](model['backbone'](x)[-1]),
                                       y)
    optim.zero_grad(set_to_none=True)
    loss.backward()
    optim.step()


def timed(fn, device):
    if device.startswith('cuda'):
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.startswith('cuda'):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def _inputs(args):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(
        args.batch_size, 3, args.img_size, args.img_size,
        generator=g).to(args.device)
    y = torch.randint(0, 100, (args.batch_size, ), generator=g)
    return x, y.to(args.device)


def peak_memory_mb(name, args):
    if args.device.startswith('cuda'):
        model, optim = build(name, args)
        x, y = _inputs(args)
        train_step(model, optim, x, y)
        torch.cuda.reset_peak_memory_stats()
        train_step(model, optim, x, y)
        peak = torch.cuda.max_memory_allocated() / 2**20
        del model, optim
        torch.cuda.empty_cache()
        return peak
    cmd = [sys.executable, __file__, '--memory-probe', name
           ] + [a for a in args.argv if a != '--no-memory']
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def memory_probe(name, args):
    model, optim = build(name, args)
    x, y = _inputs(args)
    for _ in range(2):
        train_step(model, optim, x, y)
    # VmHWM, unlike ru_maxrss, is not inherited across fork + exec.
    with open('/proc/self/status') as f:
        kb = next(line for line in f if line.startswith('VmHWM')).split()[1]
    print(int(kb) / 1024)


def run(args):
    names = variant_names(args)
    torch.manual_seed(0)
    models = {n: build(n, args) for n in names}
    x, y = _inputs(args)
    times = {n: dict(infer=[], train=[]) for n in names}
    # One phase per measurement (a train step's allocations would otherwise
    # disturb the next inference); variants interleaved inside each round.
    for phase in ('infer', 'train'):
        for r in range(args.warmup + args.rounds):
            for n in names:
                model, optim = models[n]
                if phase == 'infer':
                    model.eval()
                    t = timed(lambda: infer(model, x), args.device)
                else:
                    model.train()
                    t = timed(lambda: train_step(model, optim, x, y),
                              args.device)
                if r >= args.warmup:
                    times[n][phase].append(t)
    del models
    results = {}
    for n in names:
        results[n] = {k: statistics.median(v) for k, v in times[n].items()}
        if not args.no_memory:
            results[n]['memory_mb'] = peak_memory_mb(n, args)
    return results


def token_count(args):
    """'tokens=1+4+1369' (class token + registers + patches) for the
    table's header; patches as the patch embedding pads the image."""
    arch = ARCHS[args.arch]
    patch = arch.get('patch_size', 16)
    side = -(-args.img_size // patch)  # padded up to whole patches
    registers = arch.get('num_register_tokens', 0)
    extra = f'1+{registers}' if registers else '1'
    return f'tokens={extra}+{side * side}'


def format_table(results, args):
    base = results['frozen']
    lines = [
        f'device={args.device} threads={torch.get_num_threads()} '
        f'arch={args.arch} batch={args.batch_size} img={args.img_size} '
        f'{token_count(args)} rounds={args.rounds} (medians)', '',
        '| variant | infer ms | x frozen | train-step ms | x frozen |'
        ' peak MB | x frozen |', '|---|---|---|---|---|---|---|'
    ]
    for n, r in results.items():
        mem = r.get('memory_mb')
        mem_cols = (f'{mem:.0f} | {mem / base["memory_mb"]:.2f}'
                    if mem is not None else '- | -')
        lines.append(f'| {n} | {r["infer"] * 1e3:.0f} | '
                     f'{r["infer"] / base["infer"]:.3f} | '
                     f'{r["train"] * 1e3:.0f} | '
                     f'{r["train"] / base["train"]:.3f} | {mem_cols} |')
    prompts = sorted(
        {int(VARIANT.fullmatch(n).group(2))
         for n in results if n != 'frozen'})
    for m in prompts:
        c, v = results.get(f'cvpt{m}'), results.get(f'vpt{m}')
        if c and v:
            lines.append(f'm={m}: CVPT is {v["infer"] / c["infer"]:.2f}x '
                         f'(inference) and {v["train"] / c["train"]:.2f}x '
                         '(train step) as fast as VPT-deep')
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    if args.memory_probe:
        memory_probe(args.memory_probe, args)
        return
    import mmcvpt  # noqa: F401
    results = run(args)
    print(format_table(results, args))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(args=vars(args), results=results), f, indent=2)


if __name__ == '__main__':
    main()
