"""Which runs go together: batches for the batched engine, single runs for the rest.

A batch is the unit of work an executor ships (in-process now; a Dask worker later), so
it is a plain list of RunSpecs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import UsageError
from ..plan import RunSpec

ENGINES = ("auto", "batched", "sequential")
MAX_BATCH_CAP = 4096
"""Beyond a few thousand runs a step is already memory-bound; bigger batches gain nothing."""

BYTES_PER_SAMPLE_RUN = 4 * 12
"""float32 (R, N) tensors alive during one step: prediction, residual, loss, their grads."""


@dataclass(frozen=True)
class Unit:
    """Runs executed together (``batched``) or one run on the sequential engine."""

    specs: tuple[RunSpec, ...]
    batched: bool


def make_units(specs: Sequence[RunSpec], engine: str, max_batch: int | None) -> list[Unit]:
    """Group compatible runs into batches of at most ``max_batch`` (auto if None)."""
    from .batched import batch_key, can_batch

    if engine not in ENGINES:
        raise UsageError(f"--engine {engine!r} is unknown; use one of {', '.join(ENGINES)}")
    if max_batch is not None and max_batch < 1:
        raise UsageError(f"--max-batch must be at least 1, got {max_batch}")
    if engine == "batched":
        refused = [s for s in specs if not can_batch(s)]
        if refused:
            s = refused[0]
            raise UsageError(
                f"--engine batched: {s.optimizer.name} with {s.loss.name} is not declared "
                "batchable; use --engine auto to run such combinations one at a time"
            )
    units: list[Unit] = []
    groups: dict[tuple, list[RunSpec]] = {}
    for spec in specs:
        if engine == "sequential" or not can_batch(spec):
            units.append(Unit((spec,), batched=False))
        else:
            groups.setdefault(batch_key(spec), []).append(spec)
    for members in groups.values():
        size = max_batch or auto_max_batch(members[0])
        for start in range(0, len(members), size):
            units.append(Unit(tuple(members[start : start + size]), batched=True))
    return units


def auto_max_batch(spec: RunSpec) -> int:
    """As many runs as fit in a quarter of the device's free memory, capped."""
    per_run = spec.task.n_samples * BYTES_PER_SAMPLE_RUN + spec.epochs * 5 * 4
    free = _free_memory(spec.device)
    return max(1, min(MAX_BATCH_CAP, free // 4 // per_run))


def _free_memory(device: str) -> int:
    import torch

    dev = torch.device(device)
    if dev.type == "cuda":
        return int(torch.cuda.mem_get_info(dev)[0])
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 2**30
