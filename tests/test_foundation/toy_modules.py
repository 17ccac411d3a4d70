"""Tiny registered model and dataset for runner-level tests."""
import torch
from mmengine.dataset import BaseDataset
from mmengine.model import BaseModel
from torch import nn

from silc_seg.registry import DATASETS, MODELS


@MODELS.register_module()
class ToyRegressor(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 1)

    def forward(self, inputs, targets=None, mode='tensor'):
        pred = self.linear(inputs).squeeze(-1)
        if mode == 'loss':
            return dict(loss=((pred - targets)**2).mean())
        return pred


@DATASETS.register_module()
class ToyRegressionDataset(BaseDataset):

    def __init__(self, size=64):
        self.size = size
        generator = torch.Generator().manual_seed(0)
        self.x = torch.randn(size, 4, generator=generator)
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5, 3.0])
        super().__init__(lazy_init=True, serialize_data=False)

    def full_init(self):
        self._fully_initialized = True

    def __len__(self):
        return self.size

    def __getitem__(self, idx):
        return dict(inputs=self.x[idx], targets=self.y[idx])
