"""Train-step time and peak memory of CVPT-Mask2Former, CVPT-UperNet and
full fine-tuning with Mask2Former, built from the real configs.

Variants (random weights: the backbone's ``init_cfg`` is None):

* ``cvpt-m2f``: configs/mask2former/cvpt_vit-b16_mask2former_8xb2-160k_
  ade20k-512x512.py (frozen ViT-B + 200 prompts, Mask2Former).
* ``cvpt-upernet``: configs/cvpt/cvpt_vit-b16_upernet_8xb2-160k_ade20k-
  512x512.py (frozen ViT-B + 200 prompts, UperNet), the ratios' baseline.
* ``full-m2f``: the ``cvpt-m2f`` config with ``num_prompts=0,
  freeze_backbone=False``: every weight trains.

A train step is the model's own ``train_step`` (data preprocessor, losses,
backward, clip, step) through the optimizer wrapper its config builds
(AdamW + clip for Mask2Former, SGD for UperNet), on a synthetic batch of
``--batch-size`` images with a few random classes. As mmengine's runner
does outside a distributed launch, SyncBN becomes BN. The variants are
timed in one process, interleaved round by round; the table shows medians
and ratios to ``cvpt-upernet``.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` of a train step;
on CPU the peak resident set size (VmHWM) of a fresh child process that
builds the variant and runs two train steps (forked, one per variant, from
a process that has only imported the libraries and read the configs); it
includes the interpreter and its imports, the header's ``imports=`` (the
child's RSS before it builds the model). A forked child counts only the
pages of the shared libraries it touches, so ``imports=`` is lower than a
fresh interpreter's RSS after the same imports.

The default batch is 2 (the configs' 2 per GPU): UperNet's 1x1 pooling
branch cannot train BN on one image.

Example::

    python tools/analysis_tools/benchmark_heads.py --rounds 3
"""
import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import time
import traceback

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = {
    'cvpt-m2f':
    'configs/mask2former/cvpt_vit-b16_mask2former_8xb2-160k_ade20k-512x512.py',
    'cvpt-upernet':
    'configs/cvpt/cvpt_vit-b16_upernet_8xb2-160k_ade20k-512x512.py',
    'full-m2f':
    'configs/mask2former/cvpt_vit-b16_mask2former_8xb2-160k_ade20k-512x512.py',
}
VARIANTS = tuple(CONFIGS)
BASELINE = 'cvpt-upernet'
NUM_GT_CLASSES = 4  # classes drawn into each synthetic label map

# --tiny: C=32, 2 layers, 4 prompts; one ViT output the neck spreads to the
# four strides; heads at 32 channels.
TINY_VIT = dict(
    arch=dict(
        embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64),
    out_indices=(1, ),
    num_prompts=4)
TINY_M2F = dict(
    neck=dict(in_channels=[32], out_channels=32),
    decode_head=dict(
        in_channels=[32] * 4,
        feat_channels=32,
        out_channels=32,
        num_queries=10,
        pixel_decoder=dict(
            encoder=dict(
                num_layers=1,
                layer_cfg=dict(
                    self_attn_cfg=dict(embed_dims=32, num_heads=2),
                    ffn_cfg=dict(embed_dims=32, feedforward_channels=64))),
            positional_encoding=dict(num_feats=16)),
        positional_encoding=dict(num_feats=16),
        transformer_decoder=dict(
            num_layers=3,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=32, num_heads=2),
                cross_attn_cfg=dict(embed_dims=32, num_heads=2),
                ffn_cfg=dict(embed_dims=32, feedforward_channels=64))),
        train_cfg=dict(num_points=256)))
TINY_UPERNET = dict(
    neck=dict(in_channels=[32], out_channels=32),
    decode_head=dict(in_channels=[32] * 4, channels=16),
    auxiliary_head=dict(in_channels=32, channels=8))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--img', type=int, default=None,
                        help='square crop size; 512 (64 with --tiny)')
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument(
        '--only', nargs='+', choices=VARIANTS, metavar='NAME',
        help=f'measure these variants only ({", ".join(VARIANTS)})')
    parser.add_argument(
        '--tiny', action='store_true',
        help='tiny widths (ViT C=32, 2 layers; narrow heads) to check the '
        'tool itself')
    parser.add_argument(
        '--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--no-memory', action='store_true')
    parser.add_argument(
        '--memory-jobs', type=int, default=1,
        help='CPU memory probes run at once (each is its own process)')
    parser.add_argument('--json', help='also write the results here')
    parser.add_argument(
        '--memory-probe', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.img is None:
        args.img = 64 if args.tiny else 512
    args.variants = [v for v in VARIANTS if v in (args.only or VARIANTS)]
    if args.batch_size < 2 and BASELINE in args.variants:
        parser.error('--batch-size 1: UperNet cannot train its BN on one '
                     'image (1x1 pooling branch); use 2 or --only without '
                     f'{BASELINE}')
    # the memory probe re-runs this command line in a child process
    args.argv = list(sys.argv[1:] if argv is None else argv)
    return args


def load_config(name, args):
    """The variant's config at ``--img`` (and ``--tiny`` widths), backbone
    without pretrained weights."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, CONFIGS[name]))
    size = (args.img, args.img)
    backbone = dict(img_size=size, init_cfg=None)
    if args.tiny:
        backbone.update(TINY_VIT)
        cfg.model.backbone.pop('arch')  # a string: replaced, not merged
    if name == 'full-m2f':
        backbone.update(num_prompts=0, freeze_backbone=False)
    cfg.merge_from_dict(
        dict(model=dict(data_preprocessor=dict(size=size), backbone=backbone)))
    if args.tiny:
        cfg.merge_from_dict(
            dict(model=TINY_UPERNET if name == BASELINE else TINY_M2F))
    return cfg


def build(cfg, device):
    """(model, optim wrapper) of a variant's config, as mmengine's runner
    builds them in one process."""
    from mmengine.model import revert_sync_batchnorm
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)
        model.init_weights()
        model = revert_sync_batchnorm(model).to(device)
        optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    return model, optim_wrapper


def make_batch(args):
    """``--batch-size`` random images with label maps of a few classes in
    16x16 blocks, as a dataloader hands them to ``train_step``."""
    import torch.nn.functional as F
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    g = torch.Generator().manual_seed(0)
    size = (args.img, args.img)
    inputs, samples = [], []
    for _ in range(args.batch_size):
        inputs.append(torch.randint(0, 256, (3, *size), generator=g,
                                    dtype=torch.uint8))
        blocks = torch.randint(0, NUM_GT_CLASSES,
                               (1, 1, -(-size[0] // 16), -(-size[1] // 16)),
                               generator=g)
        label = F.interpolate(blocks.float(), scale_factor=16.)
        label = label[0, :, :size[0], :size[1]].long()
        sample = SegDataSample(
            metainfo=dict(img_shape=size, ori_shape=size))
        sample.gt_sem_seg = PixelData(data=label)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def train_step(model, optim_wrapper, data):
    model.train()
    model.train_step(data, optim_wrapper)


def timed(fn, device):
    if device.startswith('cuda'):
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.startswith('cuda'):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def rss_mb(field):
    """``VmRSS`` / ``VmHWM`` of this process in MiB (VmHWM, unlike
    ru_maxrss, is not inherited across fork + exec)."""
    with open('/proc/self/status') as f:
        kb = next(line for line in f if line.startswith(field)).split()[1]
    return int(kb) / 1024


def probe_one(cfg, args):
    """Build, two train steps; RSS before the build and the peak."""
    before = rss_mb('VmRSS')
    model, optim_wrapper = build(cfg, args.device)
    data = make_batch(args)
    for _ in range(2):
        train_step(model, optim_wrapper, data)
    return dict(imports_mb=before, memory_mb=rss_mb('VmHWM'))


def memory_probes(args):
    """The probe process: imports and configs once, then one forked child
    per variant (``--memory-jobs`` at a time), each printing a JSON line.
    A fork starts VmHWM afresh at the child's RSS, and this process never
    builds a model, so each peak is that of a fresh process."""
    configs = {n: load_config(n, args) for n in args.variants}
    failed, running, queue = [], {}, list(configs)
    while queue or running:
        while queue and len(running) < args.memory_jobs:
            name = queue.pop(0)
            pid = os.fork()
            if pid == 0:  # os._exit: no atexit, no flush of copied buffers
                try:
                    mem = probe_one(configs[name], args)
                    os.write(1, (json.dumps(dict(name=name, **mem)) +
                                 '\n').encode())
                except BaseException:
                    traceback.print_exc()
                    sys.stderr.flush()
                    os._exit(1)
                os._exit(0)
            running[pid] = name
        pid, status = os.wait()
        if status:
            failed.append(running[pid])
        del running[pid]
    if failed:
        raise SystemExit(f'memory probe failed: {", ".join(failed)}')


def cuda_peak_mb(name, args):
    model, optim_wrapper = build(load_config(name, args), args.device)
    data = make_batch(args)
    train_step(model, optim_wrapper, data)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    train_step(model, optim_wrapper, data)
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() / 2**20
    del model, optim_wrapper
    torch.cuda.empty_cache()
    return dict(memory_mb=peak)


def peak_memory(names, args):
    """{variant: dict(memory_mb=..., [imports_mb=...])}."""
    if args.device.startswith('cuda'):
        return {n: cuda_peak_mb(n, args) for n in names}
    argv = [a for a in args.argv if a != '--no-memory']
    proc = subprocess.run(
        [sys.executable, __file__, '--memory-probe'] + argv,
        capture_output=True,
        text=True)
    if proc.returncode:
        raise RuntimeError(f'memory probe failed:\n{proc.stderr[-3000:]}')
    lines = [json.loads(line) for line in proc.stdout.splitlines()
             if line.startswith('{')]
    return {d.pop('name'): d for d in lines}


def time_rounds(models, data, args):
    """{variant: train-step seconds per round}, variants interleaved in each
    round so that machine noise hits all of them alike."""
    times = {n: [] for n in models}
    for r in range(args.warmup + args.rounds):
        for n, (model, optim_wrapper) in models.items():
            t = timed(lambda: train_step(model, optim_wrapper, data),
                      args.device)
            if r >= args.warmup:
                times[n].append(t)
    return times


def run(args):
    from mmcvpt.models.utils import trainable_parameter_report
    names = args.variants
    torch.manual_seed(0)
    models = {n: build(load_config(n, args), args.device) for n in names}
    results = {}
    for n, (model, _) in models.items():
        report = trainable_parameter_report(model, logger=None)
        results[n] = dict(trainable=report['trainable'],
                          total=report['total'])
    del model
    load = [os.getloadavg()[0]]  # other processes' share of the cores
    times = time_rounds(models, make_batch(args), args)
    load.append(os.getloadavg()[0])
    del models  # before the CUDA peaks, which build each variant afresh
    for n in names:
        results[n].update(train=statistics.median(times[n]),
                          train_rounds=times[n])
    if not args.no_memory:
        for n, mem in peak_memory(names, args).items():
            results[n].update(mem)
    return dict(results=results, load=load)


def _ratio(value, base):
    return f'{value / base:.2f}' if base else '-'


def format_table(results, args, load=None):
    base = results.get(BASELINE, {})
    imports = [r['imports_mb'] for r in results.values() if 'imports_mb' in r]
    header = (f'device={args.device} threads={torch.get_num_threads()} '
              f'batch={args.batch_size} img={args.img} '
              f'rounds={args.rounds} (medians)')
    if args.tiny:
        header += ' tiny'
    if imports:
        header += f' imports={max(imports):.0f} MiB'
    if load:
        header += ' load(1m)=' + '->'.join(f'{x:.1f}' for x in load)
    lines = [
        header, '',
        f'| variant | trainable / total params | train-step s | '
        f'x {BASELINE} | peak MiB | x {BASELINE} |',
        '|---|---|---|---|---|---|'
    ]
    for n, r in results.items():
        mem = r.get('memory_mb')
        mem_cols = (f'{mem:.0f} | {_ratio(mem, base.get("memory_mb"))}'
                    if mem is not None else '- | -')
        lines.append(
            f'| {n} | {r["trainable"] / 1e6:.2f}M / {r["total"] / 1e6:.2f}M'
            f' | {r["train"]:.2f} | {_ratio(r["train"], base.get("train"))}'
            f' | {mem_cols} |')
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    import mmcvpt  # noqa: F401
    from mmengine.logging import MMLogger
    # the optimizer constructor's per-group lines would bury the table
    MMLogger.get_instance('benchmark_heads', log_level='WARNING')
    if args.memory_probe:
        memory_probes(args)
        return
    out = run(args)
    print(format_table(out['results'], args, out['load']))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(args=vars(args), **out), f, indent=2)


if __name__ == '__main__':
    main()
