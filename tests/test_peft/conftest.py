"""One tiny training run shared by the PEFT file tests of this folder."""
import os

import pytest
import torch

from mmcvpt.models import CVPTViT
from tests.seg_fixtures import REPO, make_sample, run_tool, tiny_config

ARCH = dict(embed_dims=64, num_layers=4, num_heads=4, feedforward_channels=128)


@pytest.fixture(scope='package')
def run(tmp_path_factory):
    """Tiny seg model on a 'pretrained' backbone file, 2 iterations; the
    config names the file relative to the training cwd (the repository),
    as a user's config names ``pretrain/...``."""
    tmp = tmp_path_factory.mktemp('peft')
    sample = make_sample(tmp / 'samples')
    torch.manual_seed(3)
    vit = CVPTViT(arch=ARCH, img_size=64, num_prompts=0)
    pretrained = tmp / 'vit_tiny.pth'
    torch.save({'state_dict': vit.state_dict()}, pretrained)
    written = os.path.relpath(pretrained, REPO)
    extra = ("model.update(backbone=dict(model['backbone'], init_cfg=dict("
             f"_delete_=True, type='StrictPretrained', checkpoint='{written}'"
             ')))\n'
             'default_hooks = dict(logger=dict(interval=1), checkpoint=dict('
             'interval=1, max_keep_ckpts=1))\n')
    cfg = tiny_config(tmp / 'tiny.py', sample, extra=extra)
    run_tool('tools/train.py', str(cfg), '--work-dir', str(tmp / 'work'))
    return tmp, cfg, sample
