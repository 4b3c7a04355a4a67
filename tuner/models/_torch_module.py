"""The PyTorch module of ``torch_mlp`` (imported only when such a network is built: the ``torch`` extra).

A module of its own so that a pickled network (a model file) finds its class again by name.
"""

from __future__ import annotations

import torch
from torch import nn


class DropoutMLP(nn.Module):
    """``n_layers`` hidden layers of ``n_units`` ReLU units, each followed by dropout; a linear output."""

    def __init__(self, n_in: int, n_out: int, n_layers: int = 2, n_units: int = 128, dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = n_in
        for _ in range(n_layers):
            layers += [nn.Linear(width, n_units), nn.ReLU(), nn.Dropout(dropout)]
            width = n_units
        layers.append(nn.Linear(width, n_out))
        self.layers = nn.Sequential(*layers)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.layers(X)
