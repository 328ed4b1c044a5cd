import contextlib
import copy
import os

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import MODEL_WRAPPERS, OPTIM_WRAPPERS

import mmcvpt  # noqa: F401  registers the wrappers
from mmcvpt.launch import (adapt_cfg_to_device, distributed_session, enable_amp,
                           enable_visualization, end_distributed, failed_image,
                           init_distributed, load_cli_config)
from tests.seg_fixtures import free_port


def _gpu_cluster_cfg():
    return Config(
        dict(
            default_scope='mmseg',
            env_cfg=dict(dist_cfg=dict(backend='nccl')),
            model=dict(
                type='EncoderDecoder',
                decode_head=dict(
                    norm_cfg=dict(type='SyncBN', requires_grad=True)),
                auxiliary_head=[dict(norm_cfg=dict(type='SyncBN'))]),
            optim_wrapper=dict(
                type='AmpOptimWrapper',
                loss_scale='dynamic',
                optimizer=dict(type='SGD', lr=0.01)),
            default_hooks=dict(
                visualization=dict(type='SegVisualizationHook')),
            visualizer=dict(type='SegLocalVisualizer')))


def test_untouched_with_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    cfg = _gpu_cluster_cfg()
    before = copy.deepcopy(cfg.to_dict())
    assert adapt_cfg_to_device(cfg, amp_requested=True) == []
    assert cfg.to_dict() == before


def test_rewritten_on_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    cfg = _gpu_cluster_cfg()
    changes = adapt_cfg_to_device(cfg)
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.model.decode_head.norm_cfg.type == 'BN'
    assert cfg.model.auxiliary_head[0].norm_cfg.type == 'BN'
    assert cfg.model_wrapper_cfg.type == 'CPUDistributedDataParallel'
    assert cfg.optim_wrapper.type == 'OptimWrapper'
    assert 'loss_scale' not in cfg.optim_wrapper
    assert changes == [
        'distributed backend nccl -> gloo', 'SyncBN -> BN (2 norm configs)',
        'DDP -> CPUDistributedDataParallel (device_ids=None)',
        'AMP -> fp32 (no CUDA; pass --amp for bf16)'
    ]


def test_amp_on_cpu_is_bf16_autocast(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    cfg = _gpu_cluster_cfg()
    cfg.optim_wrapper.type = 'OptimWrapper'
    enable_amp(cfg)  # --amp
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    adapt_cfg_to_device(cfg, amp_requested=True)
    assert cfg.optim_wrapper.type == 'CPUAmpOptimWrapper'
    model = nn.Linear(4, 4)
    wrapper = OPTIM_WRAPPERS.build(
        dict(
            cfg.optim_wrapper,
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1)))
    with wrapper.optim_context(model):
        out = model(torch.randn(2, 4))
    assert out.dtype == torch.bfloat16
    assert model(torch.randn(2, 4)).dtype == torch.float32  # outside
    wrapper.update_params(out.float().sum())


def test_amp_rejects_unknown_wrapper():
    cfg = Config(dict(optim_wrapper=dict(type='ApexOptimWrapper')))
    with pytest.raises(
            ValueError,
            match="--amp needs optim_wrapper.type "
            "OptimWrapper or AmpOptimWrapper, the config has "
            "'ApexOptimWrapper'"):
        enable_amp(cfg)


def test_cpu_ddp_wrapper_accepts_runner_device_ids(tmp_path):
    import torch.distributed as dist
    dist.init_process_group(
        'gloo', init_method=f'file://{tmp_path}/store', rank=0, world_size=1)
    try:
        # mmengine's Runner passes device_ids=[LOCAL_RANK] to DDP wrappers;
        # plain DDP refuses that for a CPU module.
        with pytest.raises(ValueError, match='device_ids'):
            MODEL_WRAPPERS.build(
                dict(type='MMDistributedDataParallel'),
                default_args=dict(module=nn.Linear(2, 2), device_ids=[0]))
        wrapped = MODEL_WRAPPERS.build(
            dict(type='CPUDistributedDataParallel'),
            default_args=dict(module=nn.Linear(2, 2), device_ids=[0]))
        assert wrapped.device_ids is None
        wrapped(torch.randn(3, 2)).sum().backward()
    finally:
        dist.destroy_process_group()


def test_show_dir_for_both_scopes():
    cfg = _gpu_cluster_cfg()
    enable_visualization(cfg, show_dir='/tmp/x')
    hook = cfg.default_hooks.visualization
    assert hook.draw and hook.interval == 1
    assert cfg.visualizer.save_dir == '/tmp/x'
    cls_cfg = Config(
        dict(
            default_scope='mmpretrain',
            default_hooks=dict(
                visualization=dict(type='VisualizationHook', enable=False))))
    enable_visualization(cls_cfg, show_dir='/tmp/y')
    assert cls_cfg.default_hooks.visualization == dict(
        type='VisualizationHook',
        enable=True,
        show=False,
        wait_time=2,
        out_dir='/tmp/y')


def test_cli_config_work_dir_and_options(tmp_path):
    path = tmp_path / 'my_cfg.py'
    path.write_text("model = dict(a=1, b=2)\n")
    cfg = load_cli_config(str(path), 'pytorch', {'model.a': 5})
    assert cfg.model == dict(a=5, b=2) and cfg.launcher == 'pytorch'
    assert cfg.work_dir == './work_dirs/my_cfg'
    assert load_cli_config(str(path), work_dir='w').work_dir == 'w'
    path.write_text("work_dir = 'mine'\n")
    assert load_cli_config(str(path)).work_dir == 'mine'



def _os_threads():
    return len(os.listdir('/proc/self/task'))


class _RunnerLike:
    """A DDP model in a reference cycle, as mmengine's Runner holds it."""

    def __init__(self, model):
        self.model = model
        self.me = self


def _start_gloo(tmp_path):
    import torch.distributed as dist
    dist.init_process_group(
        'gloo', init_method=f'file://{tmp_path}/store', rank=0, world_size=1)


def test_end_distributed_joins_backend_threads(tmp_path):
    import torch.distributed as dist
    torch.ones(64, 64) @ torch.ones(64, 64)  # start torch's own pool first
    before = _os_threads()
    _start_gloo(tmp_path)
    runner = _RunnerLike(
        MODEL_WRAPPERS.build(
            dict(type='CPUDistributedDataParallel'),
            default_args=dict(module=nn.Linear(2, 2))))
    runner.model(torch.randn(3, 2)).sum().backward()
    del runner  # the cycle still holds DDP's reducer and the gloo backend
    assert _os_threads() > before
    end_distributed()
    assert not dist.is_initialized()
    # Gloo's worker threads are joined now, not during interpreter exit.
    assert _os_threads() == before
    end_distributed()  # no process group: nothing to do


@pytest.mark.parametrize('error', [None, RuntimeError, KeyboardInterrupt])
def test_session_ends_the_group_on_every_path(tmp_path, monkeypatch, error):
    import torch.distributed as dist
    barriers = []
    monkeypatch.setattr(dist, 'barrier', lambda: barriers.append(1))
    cfg = Config(dict(launcher='none', work_dir=str(tmp_path)))
    with contextlib.ExitStack() as stack:
        if error is not None:
            stack.enter_context(pytest.raises(error))
        with distributed_session(cfg):
            _start_gloo(tmp_path)
            if error is not None:
                raise error('boom')
    assert not dist.is_initialized()
    # No barrier after an error: the other ranks may never reach it.
    assert barriers == ([1] if error is None else [])


def test_cpu_process_group_starts_before_the_runner(tmp_path, monkeypatch):
    import torch.distributed as dist
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    monkeypatch.setenv('RANK', '0')
    monkeypatch.setenv('WORLD_SIZE', '1')
    monkeypatch.setenv('MASTER_ADDR', '127.0.0.1')
    monkeypatch.setenv('MASTER_PORT', str(free_port()))
    cfg = Config(dict(launcher='pytorch', work_dir=str(tmp_path)))
    with distributed_session(cfg):
        assert dist.is_initialized() and dist.get_backend() == 'gloo'
        assert not init_distributed(cfg)  # once
    assert not dist.is_initialized()


def test_cuda_process_group_is_mmengines(monkeypatch):
    import mmengine.dist
    calls = []
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(mmengine.dist, 'init_dist',
                        lambda *args, **kwargs: calls.append((args, kwargs)))
    cfg = _gpu_cluster_cfg()
    cfg.launcher = 'slurm'
    assert init_distributed(cfg)
    assert calls == [(('slurm', ), dict(backend='nccl'))]
    cfg.launcher = 'none'
    assert not init_distributed(cfg)


def _truncated_jpeg(path):
    import cv2
    import numpy as np
    data = cv2.imencode('.jpg', np.full((64, 64, 3), 128, np.uint8))[1]
    path.write_bytes(data.tobytes()[:len(data) // 2])
    return path


@pytest.mark.parametrize('checkpoint', [None, 'iter_4.pth'])
def test_unloadable_image_is_one_line(tmp_path, checkpoint):
    from mmcv.transforms import LoadImageFromFile
    cfg = Config(dict(launcher='none', work_dir=str(tmp_path)))
    if checkpoint:
        (tmp_path / checkpoint).write_bytes(b'')
        (tmp_path / 'last_checkpoint').write_text(str(tmp_path / checkpoint))
    bad = _truncated_jpeg(tmp_path / 'bad.jpg')
    # cv2 decodes nothing: mmcv's "failed to load image: PATH"; pillow
    # raises without the path, which is found in the transform's frame.
    for backend in ('cv2', 'pillow'):
        load = LoadImageFromFile(imdecode_backend=backend)
        with pytest.raises(SystemExit) as info:
            with distributed_session(cfg, resume_hint=True):
                load(dict(img_path=str(bad)))
        message = str(info.value)
        assert message.startswith(f'error: cannot load {bad} (')
        assert '\n' not in message
        assert message.endswith(
            f', then resume from {tmp_path / checkpoint} with --resume'
            if checkpoint else '; no checkpoint to resume from yet')
    # Any other error keeps its traceback.
    with pytest.raises(ZeroDivisionError):
        with distributed_session(cfg, resume_hint=True):
            1 / 0


def test_rank_that_lost_its_partner_stops_in_one_line(tmp_path):
    cfg = Config(dict(launcher='none', work_dir=str(tmp_path)))
    lost = RuntimeError('[gloo/transport/tcp/pair.cc:561] Connection closed '
                        'by peer [127.0.0.1]:11664. This is typically caused '
                        'by a remote worker crashing.')
    with pytest.raises(SystemExit) as info:
        with distributed_session(cfg):
            _start_gloo(tmp_path)
            raise lost
    assert str(info.value) == (
        'error: rank 0 stopped: another rank ended first (Connection closed '
        'by peer); its error above says why')
    with pytest.raises(RuntimeError, match='Connection closed'):
        with distributed_session(cfg):  # not distributed: a real error
            raise lost


def test_failed_image_in_a_dataloader_worker():
    # A worker's error reaches the main process as text: its traceback
    # quotes mmcv's f-string before the message with the real path.
    text = ('Caught AssertionError in DataLoader worker process 0.\n'
            'Original Traceback (most recent call last):\n'
            '  File "mmcv/transforms/loading.py", line 112, in transform\n'
            "    assert img is not None, f'failed to load image: {filename}'"
            '\nAssertionError: failed to load image: /data/a b.jpg\n')
    assert failed_image(
        AssertionError(text)) == ('/data/a b.jpg',
                                  'no image data could be decoded')
    assert failed_image(ValueError('something else')) is None
