from .param_report import trainable_parameter_report
from .pretrained import CheckpointError, file_sha256, load_pretrained_state

__all__ = [
    'trainable_parameter_report', 'CheckpointError', 'file_sha256',
    'load_pretrained_state'
]
