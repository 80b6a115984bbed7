"""A sweep as a flat list of runs: the product of everything the user named."""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .kinds import KIND_NAMES
from .selection import Choice, Selection
from .task import Task


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines one run. Plain, frozen and picklable.

    ``choices`` holds one component choice per kind, in ``KIND_NAMES`` order; plugins and
    engines read them as ``spec.optimizer``, ``spec.loss`` and ``spec.init``.
    """

    run_id: int
    choices: tuple[Choice, ...]
    seed: int
    device: str
    epochs: int
    task: Task
    diverge_factor: float = math.inf
    """A run diverges when its loss exceeds this factor times its starting loss."""

    def choice(self, kind: str) -> Choice:
        return self.choices[KIND_NAMES.index(kind)]

    @property
    def optimizer(self) -> Choice:
        return self.choice("optimizer")

    @property
    def loss(self) -> Choice:
        return self.choice("loss")

    @property
    def init(self) -> Choice:
        return self.choice("init")

    @property
    def lr(self) -> float:
        return float(self.optimizer.kwargs()["lr"])

    def key(self, target: float) -> str:
        """A hash of everything that determines this run's result — task, each component
        with its hyper-parameters and its plugin's package and version, seed, device
        type, epochs, divergence factor — and the target it is measured against. Resuming
        a sweep recomputes exactly the runs whose key is not saved yet."""
        components = [
            [c.kind, c.name, c.component.plugin, c.component.dist, c.component.version,
             [[k, repr(v)] for k, v in c.params]]
            for c in self.choices
        ]  # fmt: skip
        device_type = self.device.split(":")[0]
        fields = [_task_fields(self.task), components, self.seed, device_type, self.epochs,
                  repr(self.diverge_factor), repr(target)]  # fmt: skip
        text = json.dumps(fields, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:20]


@functools.lru_cache(maxsize=64)
def _task_fields(task: Task) -> dict[str, Any]:
    """``asdict(task)``, once per task: a sweep's runs share a handful of tasks, and
    ``dataclasses.asdict`` (a deep copy) cost ~1.4 s per 10,000 run keys."""
    return asdict(task)


def build_plan(
    selection: Selection,
    seeds: Sequence[int],
    devices: Sequence[str],
    epochs: int,
    task: Task | Sequence[Task],
    diverge_factor: float = math.inf,
) -> list[RunSpec]:
    """One RunSpec per device × task (data seed) × optimizer × loss × init × seed, in that
    nesting order."""
    tasks = [task] if isinstance(task, Task) else list(task)
    per_kind = [selection.of(kind) for kind in KIND_NAMES]
    combos = itertools.product(devices, tasks, itertools.product(*per_kind), seeds)
    return [
        RunSpec(i, choices, seed, device, epochs, task, diverge_factor)
        for i, (device, task, choices, seed) in enumerate(combos)
    ]
