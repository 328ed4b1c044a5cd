"""tools/train.py after a preemption signal: exit code, requeue, resume.

:class:`~mmcvpt.engine.hooks.PreemptionHook` checkpoints and stops the
loop; here the tool turns that into its exit. The policy:

* Exit code ``128 + signal`` (143 for SIGTERM, 138 for SIGUSR1), what a
  shell reports for a process the signal ended: the run is not finished,
  so ``afterok`` dependencies wait and restart policies (torchrun
  ``--max-restarts``, Kubernetes ``OnFailure``) start it again.
* Slurm requeues a preempted job itself when it may requeue it (``sbatch
  --requeue``, ``PreemptMode=REQUEUE``) whatever the exit code; it never
  requeues a job on SIGTERM from ``scancel`` or at its time limit, nor on an
  exit code unless the site sets ``RequeueExit``. So on SIGUSR1, the
  warning a user asks for before the time limit (``--signal=USR1@90``),
  rank 0 calls ``scontrol requeue $SLURM_JOB_ID`` (the usual pattern, e.g.
  PyTorch Lightning's SLURM handler); on SIGTERM it does not, so that a
  ``scancel`` stays a cancel.
* The same command again resumes from the checkpoint named in
  ``work_dir/preempted_checkpoint`` without ``--resume``
  (:func:`resume_after_preemption`).
"""
import os
import os.path as osp
import shutil
import signal
import subprocess
import threading

from mmengine.logging import print_log

from ..engine.hooks.preemption_hook import PREEMPTED_FILE, SIGNALS, \
    PreemptionHook


class Preempted(Exception):
    """Training stopped for ``signum`` after its checkpoint was written."""

    def __init__(self, signum: int):
        super().__init__(f'stopped for {signal.Signals(signum).name}')
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def raise_if_preempted(runner) -> None:
    """Raise :class:`Preempted` if the runner's PreemptionHook stopped it."""
    for hook in runner.hooks:
        if isinstance(hook, PreemptionHook) and hook.signal is not None:
            raise Preempted(hook.signal)


def requeue_slurm_job(signum: int) -> None:
    """``scontrol requeue $SLURM_JOB_ID`` on SIGUSR1 inside a Slurm job
    (see the module's docstring); one line if it fails."""
    job = os.environ.get('SLURM_JOB_ID')
    if signum != signal.SIGUSR1 or not job:
        return
    if shutil.which('scontrol') is None:
        print_log(f'cannot requeue slurm job {job}: no scontrol on PATH',
                  logger='current')
        return
    proc = subprocess.run(['scontrol', 'requeue', job],
                          capture_output=True, text=True)
    print_log(
        f'requeued slurm job {job}' if proc.returncode == 0 else
        f'scontrol requeue {job} failed: {proc.stderr.strip()}',
        logger='current')


def resume_after_preemption(cfg, resume=None) -> None:
    """Resume from the checkpoint a preempted run left, unless ``--resume``
    names another: a requeued job runs the same command again."""
    marker = osp.join(cfg.work_dir, PREEMPTED_FILE)
    if resume is not None or not osp.isfile(marker):
        return
    with open(marker) as f:
        ckpt = f.read().strip()
    cfg.resume = True
    cfg.load_from = ckpt if osp.isfile(ckpt) else None  # None: the latest
    print_log(f'resuming the preempted run from {ckpt}', logger='current')


def _defer_to_parent(pid: int):
    """A handler for forked DataLoader workers: they ignore the signal (the
    training process stops them); before PreemptionHook's own handler takes
    over, the tool's process ends as it would have."""

    def handler(signum, frame):
        if os.getpid() != pid:
            return
        signal.signal(signum, signal.SIG_DFL)
        os.kill(pid, signum)

    return handler


def shield_workers() -> dict:
    """Install :func:`_defer_to_parent` before any DataLoader worker forks
    (mmengine starts an iteration loop's workers before its hooks run):
    torchrun sends SIGTERM to its workers' whole process group, and a
    DataLoader worker the signal ends stops the run at once ("DataLoader
    worker is killed by signal"). Returns the previous handlers."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    handler = _defer_to_parent(os.getpid())
    return {s: signal.signal(s, handler) for s in SIGNALS}
