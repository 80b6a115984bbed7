"""The batched engine at R = 1, 10, 100, 1000 runs, eager and compiled.

Each round trains a prepared batch for 500 epochs; building the batch (initialisation,
optimizer construction) and compiling happen before timing, as they are paid once per
batch, not per epoch. µs per run-epoch = time per round / (R × 500).
"""

from __future__ import annotations

import pytest
import torch

from gdbench import Task
from gdbench.engine.batched import BatchedEngine, BatchedTrainer
from gdbench.plan import build_plan
from gdbench.plugins import get_plugins
from gdbench.selection import select

EPOCHS = 500


def trainer(optimizer: str, runs: int, compile_step: bool) -> BatchedTrainer:
    sel = select(get_plugins().registry, f"{optimizer},l1")
    specs = build_plan(sel, list(range(runs)), ["cpu"], EPOCHS, Task())
    engine = BatchedEngine(compile=compile_step, compile_min_runs=1)  # measure every R
    t = engine.trainer(specs, Task().data("cpu"))
    t.train(None)  # warm-up, and compilation when compiling
    return t


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("runs", [1, 10, 100, 1000])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_batched_engine(benchmark, optimizer, runs, compiled):
    t = trainer(optimizer, runs, compiled)
    if compiled and not t.compiled:
        pytest.skip(t.note)
    benchmark.extra_info.update(
        run_epochs=runs * EPOCHS, engine="batched", runs=runs, compiled=compiled,
        optimizer=optimizer, torch=torch.__version__,
    )  # fmt: skip
    rounds = 3 if runs * (1 if compiled else 4) >= 1000 else 5
    benchmark.pedantic(t.train, args=(None,), rounds=rounds, warmup_rounds=0)
