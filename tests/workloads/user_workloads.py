"""Workloads a user might write, with a model class autocl has never seen."""

import numpy as np
import torch
from torch import nn

from autocl.workloads import Workload


class DepthwiseNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 16, 3, padding=1)
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.pw = nn.Conv2d(16, 16, 1)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        x = x + torch.relu(self.pw(torch.relu(self.dw(x))))
        return self.head(x.mean(dim=(2, 3)))


def _data(n):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 1, 8, 8)).astype(np.float32), rng.integers(0, 10, n)


def depthwise():
    return Workload(name="user-depthwise", model=DepthwiseNet().eval(), example_input=torch.zeros(1, 1, 8, 8),
                    train=_data(64), validation=_data(32), ignored_layers=("head",), feature_layers=("pw",))


class _Incomplete:
    name = "half"
    model = DepthwiseNet()
    example_input = torch.zeros(1, 1, 8, 8)
    train = _data(8)
    validation = None


def incomplete():
    return _Incomplete()
