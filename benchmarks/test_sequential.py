"""The notebook's loop against gdbench's sequential engine, side by side in one session."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gdbench import Task
from gdbench.engine.sequential import SequentialEngine
from gdbench.plan import build_plan
from gdbench.plugins import get_plugins
from gdbench.selection import select

EPOCHS = 500


@pytest.fixture(scope="module")
def data():
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)  # first-constructor warm-up
    return Task().data("cpu")


def notebook_loop(x, y, epochs=EPOCHS):
    torch.manual_seed(0)
    model = nn.Linear(1, 1)
    criterion = nn.L1Loss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for _ in range(epochs):
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
    return loss.item()


def test_notebook_loop(benchmark, data):
    benchmark.extra_info.update(run_epochs=EPOCHS, baseline=True)
    benchmark.pedantic(notebook_loop, args=data, rounds=15, warmup_rounds=2)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_gdbench_sequential(benchmark, data, optimizer):
    sel = select(get_plugins().registry, optimizer)
    (spec,) = build_plan(sel, [0], ["cpu"], EPOCHS, Task())
    benchmark.extra_info.update(run_epochs=EPOCHS, engine="sequential", optimizer=optimizer)
    engine = SequentialEngine()
    (result,) = benchmark.pedantic(engine.run, args=([spec], data), rounds=15, warmup_rounds=2)
    assert result.status == "ok"
