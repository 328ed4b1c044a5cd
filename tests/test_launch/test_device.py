"""--device: the CPU only on a machine with no NVIDIA GPU (or on purpose),
one line where a GPU is present but CUDA is not usable, and the device is
the first thing the tool logs. The probes are faked in process; the tool's
real command line sees a GPU through CUDA_VISIBLE_DEVICES=0, one of the
probes, on this CUDA-less machine."""
import re
import sys

import pytest
from mmengine.config import Config

import mmcvpt.launch.device as device
from mmcvpt.launch.device import adapt_cfg_to_device, select_device
from tests.seg_fixtures import load_tool, make_sample, run_tool, tiny_config

CPU_CHANGES = ('distributed backend nccl -> gloo, SyncBN -> BN (2 norm '
               'configs), DDP -> CPUDistributedDataParallel (device_ids=None)')
LOG_LINE = re.compile(r'^\d\d/\d\d \d\d:\d\d:\d\d - mmengine - \w+ - (.*)$',
                      re.M)


def _cfg():
    return Config(
        dict(
            launcher='none',
            env_cfg=dict(dist_cfg=dict(backend='nccl')),
            model=dict(
                decode_head=dict(norm_cfg=dict(type='SyncBN')),
                auxiliary_head=dict(norm_cfg=dict(type='SyncBN'))),
            optim_wrapper=dict(
                type='AmpOptimWrapper',
                loss_scale='dynamic',
                optimizer=dict(type='SGD', lr=0.01))))


@pytest.fixture
def machine(monkeypatch):
    """A machine whose probes see nothing until a test sets them; returns
    the lines select_device logs."""
    monkeypatch.setattr(device, 'cuda_usable', lambda: False)
    monkeypatch.setattr(device, 'nvidia_driver_files', lambda: [])
    monkeypatch.setattr(device, 'nvidia_smi', lambda: None)
    # setenv first: the tests' and the code's changes are undone after.
    for key in ('CUDA_VISIBLE_DEVICES', 'LOCAL_RANK'):
        monkeypatch.setenv(key, '0')
        monkeypatch.delenv(key)
    logged = []
    monkeypatch.setattr(device, 'print_log',
                        lambda msg, logger=None: logged.append(msg))
    return logged


def test_no_gpu_falls_back_to_cpu_and_says_so(machine):
    cfg = _cfg()
    before = cfg.to_dict()
    assert select_device(cfg) == 'cpu'
    assert machine == [
        f'device: cpu (no NVIDIA GPU on this machine); config: '
        f'{CPU_CHANGES}, AMP -> fp32 (no CUDA; pass --amp for bf16)'
    ]
    # The line announces what the tools' build_runner then changes.
    assert cfg.to_dict() == before
    assert ', '.join(adapt_cfg_to_device(cfg)) == machine[0].split(
        '; config: ')[1]
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.model.decode_head.norm_cfg.type == 'BN'


@pytest.mark.parametrize('probe, value, visible, found', [
    ('nvidia_driver_files', ['/proc/driver/nvidia/version', '/dev/nvidia0'],
     None, '/proc/driver/nvidia/version, /dev/nvidia0'),
    ('nvidia_driver_files', [f'/dev/nvidia{i}' for i in range(8)], None,
     '/dev/nvidia0, /dev/nvidia1, /dev/nvidia2, +5 more'),
    ('nvidia_smi', '/usr/bin/nvidia-smi', None, '/usr/bin/nvidia-smi'),
    (None, None, '7', "CUDA_VISIBLE_DEVICES='7'"),
    # GPUs hidden on purpose: named only beside other evidence.
    ('nvidia_driver_files', ['/dev/nvidia0'], '',
     "/dev/nvidia0, CUDA_VISIBLE_DEVICES=''"),
])
def test_gpu_present_but_cuda_unusable_is_one_line(
        machine, monkeypatch, probe, value, visible, found):
    if probe:
        monkeypatch.setattr(device, probe, lambda: value)
    if visible is not None:
        monkeypatch.setenv('CUDA_VISIBLE_DEVICES', visible)
    cfg = _cfg()
    before = cfg.to_dict()
    with pytest.raises(SystemExit) as e:
        select_device(cfg)
    assert e.value.code == (
        f'error: CUDA is not usable (torch.cuda.is_available() is False) but '
        f'this machine has signs of an NVIDIA GPU ({found}); fix the driver '
        f'or CUDA_VISIBLE_DEVICES, or pass --device cpu to run on the CPU '
        f'on purpose')
    assert cfg.to_dict() == before and machine == []


@pytest.mark.parametrize('visible, files, why', [
    ('', [], 'no NVIDIA GPU on this machine'),
    ('-1', [], 'CUDA_VISIBLE_DEVICES=-1 hides the GPUs'),
    # mmengine's documented way to train on the CPU: on purpose.
    ('-1', ['/dev/nvidia0'], 'CUDA_VISIBLE_DEVICES=-1 hides the GPUs'),
])
def test_cpu_without_a_gpu_or_with_gpus_hidden(machine, monkeypatch, visible,
                                               files, why):
    monkeypatch.setattr(device, 'nvidia_driver_files', lambda: files)
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', visible)
    assert select_device(_cfg()) == 'cpu'
    assert machine == [f'device: cpu ({why}); config: {CPU_CHANGES}, AMP -> '
                       'fp32 (no CUDA; pass --amp for bf16)']


def test_cpu_only_torch_build_is_named(machine, monkeypatch):
    import torch
    monkeypatch.setattr(torch.version, 'cuda', None)
    monkeypatch.setattr(device, 'nvidia_smi', lambda: '/usr/bin/nvidia-smi')
    with pytest.raises(SystemExit, match=rf'^error: CUDA is not usable '
                       rf'\(torch {re.escape(torch.__version__)} is built '
                       rf'without CUDA\) but this machine has signs of an '
                       rf'NVIDIA GPU \(/usr/bin/nvidia-smi\); fix'):
        select_device(_cfg())


def test_other_local_ranks_exit_without_repeating_the_line(
        machine, monkeypatch):
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '0,1')
    monkeypatch.setenv('LOCAL_RANK', '1')
    with pytest.raises(SystemExit) as e:
        select_device(_cfg())
    assert e.value.code == 1
    monkeypatch.setenv('LOCAL_RANK', '0')
    with pytest.raises(SystemExit, match=r"^error: .*'0,1'"):
        select_device(_cfg())


def test_device_cuda_without_cuda_is_one_line(machine, monkeypatch):
    with pytest.raises(SystemExit) as e:
        select_device(_cfg(), 'cuda')
    assert e.value.code == (
        'error: --device cuda, but CUDA is not usable (torch.cuda.is_available'
        '() is False) and no sign of an NVIDIA GPU here (/proc/driver/nvidia/'
        'version, /dev/nvidia*, nvidia-smi, CUDA_VISIBLE_DEVICES); fix the '
        'driver or CUDA_VISIBLE_DEVICES, or pass --device cpu')
    monkeypatch.setattr(device, 'nvidia_smi', lambda: '/usr/bin/nvidia-smi')
    with pytest.raises(SystemExit, match=r'signs of an NVIDIA GPU \(/usr/bin/'
                       r'nvidia-smi\); fix'):
        select_device(_cfg(), 'cuda')


def test_cuda_runs_the_config_as_written(machine, monkeypatch):
    import torch
    monkeypatch.setattr(device, 'cuda_usable', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 2)
    monkeypatch.setattr(torch.cuda, 'get_device_name',
                        lambda i: f'NVIDIA H200 #{i}')
    cfg = _cfg()
    before = cfg.to_dict()
    for requested in ('auto', 'cuda'):
        assert select_device(cfg, requested) == 'cuda'
    assert cfg.to_dict() == before
    assert machine == ['device: cuda (2 x NVIDIA H200 #0)'] * 2


def test_device_cpu_where_cuda_is_visible_restarts_with_it_hidden(
        machine, monkeypatch):
    # CUDA was queried at import (mmengine.device), so hiding it needs a
    # fresh start of the same command line with CUDA_VISIBLE_DEVICES=-1.
    monkeypatch.setattr(device, 'cuda_usable', lambda: True)
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '3')
    monkeypatch.setattr(sys, 'orig_argv',
                        ['python3', '-u', 'tools/train.py', 'cfg.py'])
    calls = []

    def execve(path, argv, env):
        calls.append((path, argv, env['CUDA_VISIBLE_DEVICES']))
        raise SystemExit(0)  # the process would be replaced here

    monkeypatch.setattr(device.os, 'execve', execve)
    with pytest.raises(SystemExit):
        select_device(_cfg(), 'cpu')
    assert calls == [(sys.executable,
                      [sys.executable, '-u', 'tools/train.py', 'cfg.py'],
                      '-1')]
    assert machine == []  # nothing logged before the restart
    # After the restart CUDA would be hidden; if it were still visible:
    with pytest.raises(SystemExit, match=r'^error: --device cpu: CUDA stays '
                       r'visible with CUDA_VISIBLE_DEVICES=-1; cannot'):
        select_device(_cfg(), 'cpu')


def test_device_cpu_on_a_gpu_machine_without_cuda(machine, monkeypatch):
    monkeypatch.setattr(device, 'nvidia_driver_files',
                        lambda: ['/dev/nvidia0'])
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '0')
    assert select_device(_cfg(), 'cpu', amp_requested=True) == 'cpu'
    assert device.os.environ['CUDA_VISIBLE_DEVICES'] == '-1'
    assert machine == [
        f'device: cpu (--device cpu); config: {CPU_CHANGES}, AMP -> bf16 '
        f'autocast (CPU autocast is bf16 only)'
    ]


def test_test_tool_takes_device(machine, monkeypatch, tmp_path):
    """tools/test.py: --device reaches the run before anything is built."""
    cfg_path = tiny_config(tmp_path / 'tiny.py', tmp_path)
    tool = load_tool('tools/test.py')
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '0')
    argv = ['test.py', str(cfg_path), 'x.pth']
    built = []

    class Runner:

        def test(self):
            built.append(device.os.environ['CUDA_VISIBLE_DEVICES'])

    def build_runner(cfg, loaders, **kwargs):
        built.append(list(machine))  # what was logged before the build
        return Runner()

    monkeypatch.setattr(tool, 'build_runner', build_runner)
    monkeypatch.setattr(sys, 'argv', argv + ['--device', 'cuda'])
    with pytest.raises(SystemExit, match=r"^error: --device cuda, but CUDA "
                       r"is not usable .*CUDA_VISIBLE_DEVICES='0'"):
        tool.main()
    monkeypatch.setattr(sys, 'argv', argv)  # auto: a GPU is seen
    with pytest.raises(SystemExit, match=r'^error: CUDA is not usable'):
        tool.main()
    assert built == [] and machine == []
    monkeypatch.setattr(sys, 'argv', argv + ['--device', 'cpu'])
    tool.main()
    assert built == [[
        f'device: cpu (--device cpu); config: {CPU_CHANGES}'
    ], '-1']


def test_train_tool_on_a_machine_that_looks_like_a_gpu_node(tmp_path):
    """tools/train.py as a user runs it, with CUDA_VISIBLE_DEVICES=0 on this
    CUDA-less machine: one line and nothing written; with --device cpu
    it trains, and the device is the first line it logs."""
    cfg = tiny_config(tmp_path / 'tiny.py', make_sample(tmp_path))
    work = tmp_path / 'work'
    gpu_node = dict(CUDA_VISIBLE_DEVICES='0')
    proc = run_tool('tools/train.py', str(cfg), '--work-dir', str(work),
                    env=gpu_node, check=False)
    assert proc.returncode == 1 and proc.stdout == ''
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: CUDA is not usable (torch.cuda.is_available() is False) but "
        "this machine has signs of an NVIDIA GPU (CUDA_VISIBLE_DEVICES='0'); "
        "fix the driver or CUDA_VISIBLE_DEVICES, or pass --device cpu to run "
        "on the CPU on purpose")
    assert not work.exists()
    proc = run_tool('tools/train.py', str(cfg), '--work-dir', str(work),
                    '--device', 'cpu', '--no-validate', env=gpu_node)
    logged = LOG_LINE.findall(proc.stdout)
    assert logged[0] == f'device: cpu (--device cpu); config: {CPU_CHANGES}'
    assert re.search(r'Iter\(train\) \[2/2\]', proc.stdout)
    assert (work / 'iter_2.pth').is_file()
    # The run's log file records each change too.
    log_file, = work.glob('*/*.log')
    assert 'no CUDA on this machine: distributed backend nccl -> gloo' in \
        log_file.read_text()
