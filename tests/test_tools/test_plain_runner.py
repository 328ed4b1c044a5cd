"""Our configs train through mmengine alone, as mmseg's and mmpretrain's own
tools/train.py run them: ``Runner.from_cfg(cfg).train()`` in a fresh process
on a CPU, with no mmcvpt tool (only the config's ``custom_imports``)."""
import subprocess
import sys

import torch
from mmengine.config import Config

from tests.sample_fixtures import make_samples
from tests.seg_fixtures import REPO, make_sample, tiny_config
from tests.test_tools.test_cls_tools import TINY as CLS_TINY

PLAIN_TRAIN = '''
import sys
from mmengine.config import Config
from mmengine.runner import Runner
cfg = Config.fromfile(sys.argv[1])
cfg.work_dir = sys.argv[2]
Runner.from_cfg(cfg).train()
'''


def _plain_train(cfg, work):
    proc = subprocess.run([sys.executable, '-c', PLAIN_TRAIN,
                           str(cfg), str(work)],
                          cwd=REPO,
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def test_configs_are_fp32_and_amp_is_opt_in():
    for path in ('configs/cvpt_vitb_ade20k.py', 'configs/vitb-full_ade20k.py',
                 'configs/vtab1k/cvpt_vitb_vtab1k-eurosat.py',
                 'configs/fgvc/cvpt_vitb_fgvc-CUB_200_2011.py'):
        optim = Config.fromfile(REPO / path).optim_wrapper
        assert optim.type == 'OptimWrapper', path
        assert 'loss_scale' not in optim, path


def test_plain_runner_trains_seg_config_on_cpu(tmp_path):
    cfg = tiny_config(tmp_path / 'tiny.py', make_sample(tmp_path))
    log = _plain_train(cfg, tmp_path / 'work')
    assert 'mIoU' in log
    state = torch.load(
        tmp_path / 'work/iter_2.pth', weights_only=True)['state_dict']
    assert state['backbone.prompts'].shape == (4, 4, 64)
    assert (tmp_path / 'work/iter_2_peft.pth').is_file()


def test_plain_runner_trains_cls_config_on_cpu(tmp_path):
    root = make_samples.make('vtab1k', str(tmp_path))
    cfg = tmp_path / 'tiny_cls.py'
    cfg.write_text(
        f"_base_ = ['{REPO}/configs/demo/cvpt_vitb_vtab1k-sample.py']\n"
        f"data_root = '{root}'\n" + CLS_TINY)
    log = _plain_train(cfg, tmp_path / 'work')
    assert 'accuracy/top1' in log
    assert (tmp_path / 'work/epoch_1_peft.pth').is_file()
