"""tools/train.py on 2 CPU processes (gloo) stopped by a signal, then run
again with the same command: it resumes as if never stopped."""
import json
import os
import signal
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from mmcvpt.engine.hooks.preemption_hook import PREEMPTED_FILE
from mmcvpt.launch import distributed_session
from mmcvpt.launch.preemption import Preempted, resume_after_preemption
from tests.seg_fixtures import REPO, free_port, make_sample, tiny_config

# The test's own hook: rank 1 only signals itself in iteration SIGNAL_AT
# (an environment variable, so that the uninterrupted run has none).
SIGNAL_HOOK = '''
import os, signal
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

@HOOKS.register_module()
class SignalRankOneAt(Hook):
    def after_train_iter(self, runner, batch_idx, data_batch, outputs):
        at = os.environ.get('SIGNAL_AT')
        if at and get_rank() == 1 and runner.iter + 1 == int(at):
            os.kill(os.getpid(), signal.SIGTERM)
'''
EXTRA = '''
custom_imports = dict(imports=['mmcvpt', 'signal_hook'],
                      allow_failed_imports=False)
default_hooks = dict(logger=dict(interval=1),
                     signal_rank_one=dict(type='SignalRankOneAt'))
'''


def _train_two_ranks(cfg, work, env):
    """``tools/train.py CFG --launcher pytorch`` as ranks 0 and 1 (the
    environment torchrun gives); returns both exit codes and outputs."""
    port = str(free_port())
    procs = [
        subprocess.Popen(
            [sys.executable, 'tools/train.py', str(cfg), '--launcher',
             'pytorch', '--work-dir', str(work), '--no-validate'],
            cwd=REPO,
            env=dict(os.environ, **env, MASTER_ADDR='127.0.0.1',
                     MASTER_PORT=port, RANK=str(rank), LOCAL_RANK=str(rank),
                     WORLD_SIZE='2'),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True) for rank in (0, 1)
    ]
    try:
        outs = [p.communicate(timeout=300)[0] for p in procs]
    finally:
        for p in procs:  # a rank left waiting for a dead partner
            if p.poll() is None:
                p.kill()
    return [p.returncode for p in procs], outs


def _json_losses(work):
    """{iteration: loss} from the json logs of every run in ``work``."""
    losses = {}
    for path in sorted(work.glob('*/vis_data/*.json')):
        if path.name == 'scalars.json':
            continue
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            if 'loss' in entry:
                losses[entry['step']] = entry['loss']
    return losses


def test_signalled_run_resumes_with_the_uninterrupted_losses(tmp_path):
    """Rank 1 alone gets SIGTERM in iteration 2 of 3: both ranks stop after
    it with exit code 143, iter_2.pth (both ranks' RNG states) and its PEFT
    file; the same command again resumes from it and logs the losses of
    an uninterrupted run (tools/misc/repeat_preemption.py repeats this)."""
    check_preemption(tmp_path)


def check_preemption(tmp_path):
    sample = make_sample(tmp_path / 'sample')
    (tmp_path / 'signal_hook.py').write_text(SIGNAL_HOOK)
    cfg = tiny_config(tmp_path / 'tiny.py', sample, iters=3, extra=EXTRA)
    # mmcvpt's runtime base adds the hook to every config.
    hooks = [h['type'] for h in Config.fromfile(
        cfg, import_custom_modules=False).custom_hooks]
    assert 'PreemptionHook' in hooks
    env = dict(PYTHONPATH=os.pathsep.join(
        [str(tmp_path), str(REPO), os.environ.get('PYTHONPATH', '')]))

    codes, outs = _train_two_ranks(cfg, tmp_path / 'full', env)
    assert codes == [0, 0], outs[0][-3000:] + outs[1][-3000:]
    full = _json_losses(tmp_path / 'full')
    assert sorted(full) == [1, 2, 3]

    work = tmp_path / 'part'
    stop = dict(env, SIGNAL_AT='2')
    codes, outs = _train_two_ranks(cfg, work, stop)
    # Only rank 1 got the signal; both stopped after iteration 2.
    assert codes == [128 + signal.SIGTERM] * 2, outs[0][-3000:] + outs[1]
    assert 'PreemptionHook: SIGTERM: stopped after iter 2; saved ' \
        f'{work / "iter_2.pth"}' in outs[0]
    assert (work / PREEMPTED_FILE).read_text() == str(work / 'iter_2.pth')
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_2.pth')
    assert (work / 'iter_2_peft.pth').is_file()
    ckpt = torch.load(work / 'iter_2.pth', weights_only=True)
    assert ckpt['meta']['iter'] == 2 and len(ckpt['rng_state']) == 2
    assert _json_losses(work) == {1: full[1], 2: full[2]}

    codes, outs = _train_two_ranks(cfg, work, stop)  # the same command
    assert codes == [0, 0], outs[0][-3000:] + outs[1][-3000:]
    assert f'resuming the preempted run from {work / "iter_2.pth"}' \
        in outs[0]
    assert _json_losses(work) == full
    assert not (work / PREEMPTED_FILE).exists()


def _fake_scontrol(tmp_path, monkeypatch):
    """``scontrol`` on PATH that records its arguments."""
    calls = tmp_path / 'scontrol_calls'
    script = tmp_path / 'bin/scontrol'
    script.parent.mkdir()
    script.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    script.chmod(0o755)
    monkeypatch.setenv('PATH', f'{script.parent}{os.pathsep}'
                       f'{os.environ["PATH"]}')
    monkeypatch.setenv('SLURM_JOB_ID', '1234')
    return calls


@pytest.mark.parametrize('signum,requeued',
                         [(signal.SIGUSR1, True), (signal.SIGTERM, False)])
def test_session_exit_code_and_slurm_requeue(tmp_path, monkeypatch, signum,
                                             requeued):
    """USR1 (the time-limit warning) requeues the slurm job; SIGTERM
    (preemption, which slurm requeues itself, or scancel) does not; both
    exit with 128 + signal."""
    calls = _fake_scontrol(tmp_path, monkeypatch)
    cfg = Config(dict(launcher='none', work_dir=str(tmp_path)))
    with pytest.raises(SystemExit) as e:
        with distributed_session(cfg):
            raise Preempted(signum)
    assert e.value.code == 128 + signum
    assert (calls.read_text() if calls.exists() else None) == \
        ('requeue 1234\n' if requeued else None)


def test_resume_after_preemption(tmp_path):
    ckpt = tmp_path / 'iter_2.pth'
    ckpt.write_bytes(b'')
    cfg = Config(dict(work_dir=str(tmp_path), resume=False, load_from=None))
    resume_after_preemption(cfg)
    assert (cfg.resume, cfg.load_from) == (False, None)  # nothing preempted
    (tmp_path / PREEMPTED_FILE).write_text(str(ckpt))
    resume_after_preemption(cfg, resume='other.pth')  # --resume wins
    assert (cfg.resume, cfg.load_from) == (False, None)
    resume_after_preemption(cfg)
    assert (cfg.resume, cfg.load_from) == (True, str(ckpt))
