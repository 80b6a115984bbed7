"""The tutorial notebook's loop, verbatim in spirit: the reference gdbench must match."""

from __future__ import annotations

import torch
from torch import nn


def notebook_run(x, y, seed: int, epochs: int = 500, lr: float = 0.01, loss=None, optim=None):
    """nn.Linear(1, 1) after torch.manual_seed(seed), L1 loss, SGD; returns losses, model."""
    torch.manual_seed(seed)
    model = nn.Linear(1, 1)
    criterion = loss or nn.L1Loss()
    optimizer = (optim or torch.optim.SGD)(model.parameters(), lr=lr)
    losses = []
    for _ in range(epochs):
        optimizer.zero_grad()
        out = model(x)
        loss_value = criterion(out, y)
        loss_value.backward()
        optimizer.step()
        losses.append(loss_value.item())
    return losses, model
