"""Shared by the tool tests: loading a tools/ script as a module, the ADE20K
sample and a tiny-width variant of the headline config that trains in seconds
on a CPU."""
import importlib.util
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def load_tool(path):
    """Import a script under the repository (``tools/...py``) as a module."""
    path = REPO / path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_sample(root):
    make_samples = load_tool('tools/misc/make_samples.py')
    return Path(make_samples.make('ade20k', str(root)))


_TINY = load_tool('tools/misc/tiny_seg_config.py')
DEMO_CONFIG = Path(_TINY.DEMO_CONFIG)
TINY_OVERRIDES = _TINY.TINY_OVERRIDES


def tiny_config(path, data_root, iters=2, extra=''):
    """Write a tiny config deriving from the demo config; returns its path
    (tools/misc/tiny_seg_config.py)."""
    return Path(_TINY.write_tiny_config(path, data_root, iters, extra))


def run_tool(*args, env=None, check=True, timeout=300):
    """Run a tools/ script with this interpreter; returns CompletedProcess."""
    full_env = dict(os.environ, **(env or {}))
    full_env['PATH'] = str(Path(sys.executable).parent) + os.pathsep + \
        full_env.get('PATH', '')
    cmd = list(args)
    if cmd[0].endswith('.py'):
        cmd = [sys.executable] + cmd
    proc = subprocess.run(
        cmd,
        cwd=REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'{cmd} failed ({proc.returncode}):\n'
                             f'{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}')
    return proc


def logged_losses(text):
    """{iteration: loss} from mmengine's training log lines."""
    return {
        int(m.group(1)): float(m.group(2))
        for m in re.finditer(
            r'Iter\(train\)\s+\[\s*(\d+)/\d+\].*?\bloss: '
            r'([0-9.]+)', text)
    }


def free_port():
    """A TCP port nobody listens on now (for a distributed run's master)."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def dist_train(cfg, work, *extra, **kwargs):
    """``tools/dist_train.sh CFG 2 --work-dir WORK ...`` on a free port."""
    return run_tool(
        'tools/dist_train.sh',
        str(cfg),
        '2',
        '--work-dir',
        str(work),
        *extra,
        env=dict(PORT=str(free_port())),
        timeout=kwargs.pop('timeout', 120),
        **kwargs)


def logged_metrics(text, loop):
    """The last ``Iter(loop)`` metrics line of a log, as {name: value}."""
    lines = [
        line for line in text.splitlines()
        if f'Iter({loop})' in line and 'mIoU' in line
    ]
    assert lines, f'no Iter({loop}) metrics in the log'
    return {
        k: float(v)
        for k, v in re.findall(r'(aAcc|mIoU|mAcc): ([0-9.]+)', lines[-1])
    }


def peft_loads_as_full(cfg, full_ckpt, peft_ckpt, img):
    """What a user does with a PEFT file: ``init_model`` and
    ``MMSegInferencer`` on it must hold the full checkpoint's tensors and
    give its logits to the last bit. Returns (full model, inferencer,
    logits of the image (K, H, W))."""
    import torch
    from mmseg.apis import MMSegInferencer, inference_model, init_model
    full = init_model(str(cfg), str(full_ckpt), device='cpu')
    peft = init_model(str(cfg), str(peft_ckpt), device='cpu')
    inferencer = MMSegInferencer(
        model=str(cfg), weights=str(peft_ckpt), device='cpu')
    expected = full.state_dict()
    for model in (peft, inferencer.model):
        state = model.state_dict()
        assert state.keys() == expected.keys()
        assert [k for k in expected
                if not torch.equal(state[k], expected[k])] == []
    with torch.no_grad():
        logits = [
            inference_model(m, str(img)).seg_logits.data
            for m in (full, peft, inferencer.model)
        ]
    assert (logits[1] - logits[0]).abs().max() == 0
    assert (logits[2] - logits[0]).abs().max() == 0
    return full, inferencer, logits[0]
