"""Generate the small embedded datasets, in the real on-disk formats.

Deterministic (seeded numpy, fixed JPEG quality): the same bytes every run.
Each dataset is written to a temporary folder and renamed into place with a
``.complete`` marker written last, so a half-written folder is never used.

Usage::

    python tools/misc/make_samples.py all --out data/samples
"""
import argparse
import json
import os
import os.path as osp
import shutil
import tempfile

import cv2
import numpy as np

MARKER = '.complete'

# ADE20K class ids (1-based; 0 = other/ignore) used by the sample, each with
# a texture that decides it: the class is learnable from appearance.
ADE_BACKGROUND = 1  # wall
ADE_SHAPES = {
    'circle': 5,  # tree
    'square': 3,  # sky
    'triangle': 7,  # road
    'ellipse': 13,  # person
}
ADE_SIZES = [(320, 240), (256, 320), (288, 288)]  # (W, H)


def _texture(kind, h, w, rng):
    """BGR uint8 texture of one class, with per-image jitter."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    noise = rng.normal(0, 12, (h, w, 1))
    if kind == ADE_BACKGROUND:  # beige, low-frequency blotches
        base = np.array([150, 180, 200
                         ]) + 20 * np.sin(xx / 23 + yy / 31)[..., None]
    elif kind == 5:  # green dots
        dots = (np.sin(xx / 3) * np.sin(yy / 3) > 0.5)[..., None]
        base = np.array([40, 140, 40]) + 60 * dots
    elif kind == 3:  # blue vertical gradient
        base = np.array([220, 150, 90]) + (yy / h * 40)[..., None]
    elif kind == 7:  # grey diagonal stripes
        base = np.array([110, 110, 110]) + 50 * ((xx + yy) // 8 % 2)[..., None]
    else:  # red checkerboard
        base = np.array([50, 50, 200]) + 60 * (
            (xx // 6 + yy // 6) % 2)[..., None]
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def _ade_pair(rng, w, h):
    image = _texture(ADE_BACKGROUND, h, w, rng)
    label = np.full((h, w), ADE_BACKGROUND, np.uint8)
    for _ in range(rng.integers(2, 5)):
        shape = list(ADE_SHAPES)[rng.integers(len(ADE_SHAPES))]
        cls = ADE_SHAPES[shape]
        mask = np.zeros((h, w), np.uint8)
        cx, cy = int(rng.integers(40, w - 40)), int(rng.integers(40, h - 40))
        r = int(rng.integers(24, min(w, h) // 3))
        if shape == 'circle':
            cv2.circle(mask, (cx, cy), r, 1, -1)
        elif shape == 'square':
            cv2.rectangle(mask, (cx - r, cy - r), (cx + r, cy + r), 1, -1)
        elif shape == 'triangle':
            pts = np.array([[cx, cy - r], [cx - r, cy + r], [cx + r, cy + r]])
            cv2.fillPoly(mask, [pts.astype(np.int32)], 1)
        else:
            cv2.ellipse(mask, (cx, cy), (r, r // 2), int(rng.integers(180)), 0,
                        360, 1, -1)
        on = mask.astype(bool)
        image[on] = _texture(cls, h, w, rng)[on]
        label[on] = cls
    label[:4], label[-4:], label[:, :4], label[:, -4:] = 0, 0, 0, 0  # other
    return image, label


def make_ade20k(out, num_train=16, num_val=8, seed=0):
    """ADE20K layout: images/{training,validation}/ADE_*.jpg and
    annotations/{training,validation}/ADE_*.png (uint8, 0 = other)."""
    rng = np.random.default_rng(seed)
    for split, prefix, num in (('training', 'train', num_train),
                               ('validation', 'val', num_val)):
        os.makedirs(osp.join(out, 'images', split))
        os.makedirs(osp.join(out, 'annotations', split))
        for i in range(num):
            w, h = ADE_SIZES[i % len(ADE_SIZES)]
            image, label = _ade_pair(rng, w, h)
            name = f'ADE_{prefix}_{i + 1:08d}'
            cv2.imwrite(
                osp.join(out, 'images', split, name + '.jpg'), image,
                [cv2.IMWRITE_JPEG_QUALITY, 90])
            cv2.imwrite(
                osp.join(out, 'annotations', split, name + '.png'), label)


def _class_image(rng, label, size=64):
    """Class = hue and stripe orientation; position and noise vary."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    angle = np.pi * label / 4 + rng.normal(0, 0.1)
    stripes = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) / 3 +
                     rng.uniform(0, 6))
    hue = np.array([[60, 60, 200], [60, 200, 60], [200, 60, 60],
                    [60, 200, 200]][label % 4], np.float32)
    image = hue + 50 * stripes[..., None] + rng.normal(0, 10, (size, size, 1))
    return np.clip(image, 0, 255).astype(np.uint8)


def _write(path, image):
    os.makedirs(osp.dirname(path), exist_ok=True)
    cv2.imwrite(path, image, [cv2.IMWRITE_JPEG_QUALITY, 90])


VTAB_SAMPLE_SPLITS = {'train800': 4, 'val200': 2, 'test': 2}  # per class


def make_vtab1k(out, tasks=('cifar', 'eurosat'), num_classes=4, seed=1):
    """NOAH layout: <task>/{train800,val200,train800val200,test}.txt with
    ``images/<name>.jpg label`` lines; ``num_classes`` classes per task."""
    rng = np.random.default_rng(seed)
    for task in tasks:
        lines = {}
        for split, per_class in VTAB_SAMPLE_SPLITS.items():
            lines[split] = []
            for label in range(num_classes):
                for k in range(per_class):
                    name = f'images/{split}_{label}_{k}.jpg'
                    _write(osp.join(out, task, name), _class_image(rng, label))
                    lines[split].append(f'{name} {label}')
        lines['train800val200'] = lines['train800'] + lines['val200']
        for split, rows in lines.items():
            with open(osp.join(out, task, f'{split}.txt'), 'w') as f:
                f.write('\n'.join(rows) + '\n')


FGVC_SAMPLE_CLASSES = [
    '001.Black_footed_Albatross', '002.Laysan_Albatross',
    '003.Sooty_Albatross', '004.Groove_billed_Ani'
]


def make_fgvc(out, seed=2):
    """VPT's FGVC layout for CUB_200_2011: {train,val,test}.json mapping
    ``<class dir>/<image>.jpg`` (under images/) to a label (1-based)."""
    rng = np.random.default_rng(seed)
    root = osp.join(out, 'CUB_200_2011')
    for split, per_class in (('train', 3), ('val', 1), ('test', 2)):
        anno = {}
        for label, cls in enumerate(FGVC_SAMPLE_CLASSES):
            for k in range(per_class):
                name = f'{cls}/{split}_{k}.jpg'
                _write(
                    osp.join(root, 'images', name), _class_image(rng, label))
                anno[name] = label + 1
        with open(osp.join(root, f'{split}.json'), 'w') as f:
            json.dump(anno, f, indent=1, sort_keys=True)


MAKERS = {'ade20k': make_ade20k, 'vtab1k': make_vtab1k, 'fgvc': make_fgvc}


def make(name, root):
    """Create ``root/name`` unless it is complete; returns its path."""
    dst = osp.join(root, name)
    if osp.isfile(osp.join(dst, MARKER)):
        return dst
    os.makedirs(root, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f'.{name}.', dir=root)
    try:
        MAKERS[name](osp.join(tmp, name))
        open(osp.join(tmp, name, MARKER), 'w').close()
        if osp.exists(dst):  # an incomplete earlier attempt
            shutil.rmtree(dst)
        os.replace(osp.join(tmp, name), dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dst


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('names', nargs='+', choices=sorted(MAKERS) + ['all'])
    parser.add_argument('--out', default='data/samples')
    args = parser.parse_args(argv)
    names = sorted(MAKERS) if 'all' in args.names else args.names
    for name in names:
        print(f'{name}: {make(name, args.out)}')


if __name__ == '__main__':
    main()
