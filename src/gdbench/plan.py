"""A sweep as a flat list of runs: the product of everything the user named."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

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

    def config(self) -> tuple[str, str, str, str]:
        """What identifies a configuration across seeds: labels and device."""
        return (self.optimizer.label(), self.loss.label(), self.init.label(), self.device)

    def describe(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "optimizer": self.optimizer.name,
            "loss": self.loss.name,
            "init": self.init.name,
            "seed": self.seed,
            "device": self.device,
            "epochs": self.epochs,
        }


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
