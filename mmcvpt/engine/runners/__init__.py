from .total_batch_loop import (BatchSplit, TotalBatchEpochBasedTrainLoop,
                               TotalBatchIterBasedTrainLoop,
                               resolve_batch_size, split_total_batch)

__all__ = [
    'BatchSplit', 'TotalBatchEpochBasedTrainLoop',
    'TotalBatchIterBasedTrainLoop', 'resolve_batch_size', 'split_total_batch'
]
