"""A toy model, dataset and batch-recording hook for the train-loop tests;
registered when a config's ``custom_imports`` names this module."""
import json
import os.path as osp

import torch
import torch.nn as nn
from mmengine.dataset import BaseDataset
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.registry import DATASETS, HOOKS, MODELS


@DATASETS.register_module()
class ToyBatchDataset(BaseDataset):
    """``length`` samples of 4 features, no files."""

    def __init__(self, length=32, **kwargs):
        self.length = length
        super().__init__(serialize_data=False, **kwargs)

    def load_data_list(self):
        return [dict(x=float(i)) for i in range(self.length)]

    def prepare_data(self, idx):
        x = self.get_data_info(idx)['x']
        return dict(inputs=torch.full((4, ), x), labels=torch.tensor(0))


@MODELS.register_module()
class ToyBatchModel(BaseModel):

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.net = nn.Linear(4, 2)

    def forward(self, inputs, labels, mode='tensor'):
        logits = self.net(inputs)
        if mode == 'loss':
            return dict(loss=nn.functional.cross_entropy(logits, labels))
        return logits


@HOOKS.register_module()
class BatchRecorderHook(Hook):
    """Writes ``batches_rank<r>.json``: the number of samples in every
    training batch this process fed to the model."""

    def before_run(self, runner):
        self.sizes = []

    def after_train_iter(self, runner, batch_idx, data_batch, outputs):
        self.sizes.append(len(data_batch['inputs']))

    def after_run(self, runner):
        path = osp.join(runner.work_dir, f'batches_rank{runner.rank}.json')
        with open(path, 'w') as f:
            json.dump(self.sizes, f)
