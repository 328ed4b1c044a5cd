"""The Runner of tools/train.py and tools/test.py."""
from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from .batch import check_total_batch_size
from .device import adapt_cfg_to_device, log_device_changes
from .distributed import init_distributed
from .preflight import preflight_once


def build_runner(cfg: Config,
                 loaders: tuple,
                 amp_requested: bool = False,
                 check_images: bool = False,
                 skip_preflight: bool = False):
    """Fit the config to this machine, check the inputs, build the runner.

    The process group is started first (if the tool's
    :func:`distributed_session` has not already), so that the checks run
    once, on rank 0. A problem with any of ``loaders`` exits every rank
    with the same one-line ``error: ...`` before anything is written.

    Args:
        cfg (Config): The tool's config.
        loaders (tuple[str]): Dataloader keys to check.
        amp_requested (bool): ``--amp``. Defaults to False.
        check_images (bool): ``--check-images``: decode every image and
            segmentation map. Defaults to False (headers only).
        skip_preflight (bool): ``--skip-preflight``. Defaults to False.
    """
    changes = adapt_cfg_to_device(cfg, amp_requested=amp_requested)
    init_distributed(cfg)
    check_total_batch_size(cfg, loaders)
    if not skip_preflight:
        preflight_once(cfg, loaders, deep=check_images)
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else \
        Runner.from_cfg(cfg)
    log_device_changes(changes)
    return runner
