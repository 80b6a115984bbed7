"""A sweep as a flat list of runs: the product of everything the user named."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from .selection import Choice, Selection
from .task import Task


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines one run. Plain, frozen and picklable."""

    run_id: int
    optimizer: Choice
    loss: Choice
    init: Choice
    seed: int
    device: str
    epochs: int
    task: Task

    @property
    def lr(self) -> float:
        return float(self.optimizer.kwargs()["lr"])


def build_plan(
    selection: Selection, seeds: list[int], devices: list[str], epochs: int, task: Task
) -> list[RunSpec]:
    """One RunSpec per device × optimizer × loss × init × seed, in that nesting order."""
    combos = itertools.product(
        devices, selection.optimizers, selection.losses, selection.inits, seeds
    )
    return [
        RunSpec(i, opt, loss, init, seed, device, epochs, task)
        for i, (device, opt, loss, init, seed) in enumerate(combos)
    ]
