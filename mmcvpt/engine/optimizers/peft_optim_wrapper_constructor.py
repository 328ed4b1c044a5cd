"""mmengine's optimizer constructor with a log sized for frozen backbones."""
import logging
from collections import OrderedDict

from mmengine.logging import MMLogger, print_log
from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS

# The two per-tensor lines of DefaultOptimWrapperConstructor.add_params.
_PER_TENSOR = ('paramwise_options -- ', 'is skipped since its requires_grad=')


class _DropPerTensorLines(logging.Filter):

    def __init__(self):
        super().__init__()
        self.dropped = 0

    def filter(self, record):
        message = record.getMessage()
        if any(part in message for part in _PER_TENSOR):
            self.dropped += 1
            return False
        return True


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class PEFTOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """:class:`DefaultOptimWrapperConstructor` (same parameter groups), with
    one log line per distinct group setting instead of one or three per
    tensor: with a frozen ViT-B the default logs a warning for each of its
    ~150 frozen tensors and every option of every head tensor.

    The summary, e.g.::

        optimizer SGD: 1 trainable tensors (1.84M) lr=0.001 weight_decay=0
        optimizer SGD: 86 trainable tensors (1.13M) lr=0.01 lr_mult=10 ...
        optimizer SGD: 152 frozen tensors (85.80M), never updated ...
    """

    def __call__(self, model):
        logger = MMLogger.get_current_instance()
        quiet = _DropPerTensorLines()
        logger.addFilter(quiet)
        try:
            wrapper = super().__call__(model)
        finally:
            logger.removeFilter(quiet)
        self._log_summary(wrapper.optimizer, model)
        return wrapper

    @staticmethod
    def _log_summary(optimizer, model) -> None:
        model = getattr(model, 'module', model)
        groups = OrderedDict()
        for group in optimizer.param_groups:
            trained = [p for p in group['params'] if p.requires_grad]
            if not trained:
                continue
            options = tuple(
                (k, v) for k, v in sorted(group.items())
                if k in ('lr', 'weight_decay', 'lr_mult', 'decay_mult'))
            count, numel = groups.get(options, (0, 0))
            groups[options] = (count + len(trained),
                               numel + sum(p.numel() for p in trained))
        name = type(optimizer).__name__
        for options, (count, numel) in groups.items():
            text = ' '.join(f'{k}={v:g}' for k, v in options)
            print_log(f'optimizer {name}: {count} trainable tensors '
                      f'({numel / 1e6:.2f}M) {text}', logger='current')
        frozen = [p for p in model.parameters() if not p.requires_grad]
        if frozen:
            print_log(
                f'optimizer {name}: {len(frozen)} frozen tensors '
                f'({sum(p.numel() for p in frozen) / 1e6:.2f}M), never '
                'updated (requires_grad=False)',
                logger='current')
