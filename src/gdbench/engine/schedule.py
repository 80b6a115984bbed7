"""Which runs go together: a sweep's specs grouped into batches, each for one engine.

A ``Batch`` is the unit of work an executor ships: a plain, picklable value naming its
engine and holding its specs, so that any executor can run it with ``engine.run``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..errors import UsageError
from ..plan import RunSpec
from . import AUTO, ENGINE_CHOICES
from .base import Engine

MAX_BATCH_CAP = 4096
"""Beyond a few thousand runs a step is already memory-bound; bigger batches gain nothing."""

BYTES_PER_SAMPLE_RUN = 4 * 12
"""float32 (R, N) tensors alive during one step: prediction, residual, loss, their grads."""


@dataclass(frozen=True)
class Batch:
    """Runs executed together by the engine called ``engine``."""

    engine: str
    specs: tuple[RunSpec, ...]


def make_batches(
    specs: Sequence[RunSpec],
    engines: Mapping[str, Engine],
    choice: str,
    max_batch: int | Mapping[str, int] | None,
) -> list[Batch]:
    """Give each spec an engine (``choice``, or under ``auto`` the first in ``engines``
    that accepts it) and group runs the engine may batch into batches of at most
    ``max_batch`` (one number, or one per engine name; by default from free memory)."""
    if choice != AUTO and choice not in engines:
        raise UsageError(
            f"{choice!r} is unknown; use one of {', '.join(ENGINE_CHOICES)}", param="engine"
        )
    batches: list[Batch] = []
    groups: dict[tuple[str, object], list[RunSpec]] = {}
    for spec in specs:
        name = _engine_for(spec, engines, choice)
        key = engines[name].batch_key(spec)
        if key is None:
            batches.append(Batch(name, (spec,)))
        else:
            groups.setdefault((name, key), []).append(spec)
    for (name, _), members in groups.items():
        cap = max_batch.get(name) if isinstance(max_batch, Mapping) else max_batch
        size = cap or auto_max_batch(members[0])
        for start in range(0, len(members), size):
            batches.append(Batch(name, tuple(members[start : start + size])))
    return batches


def _engine_for(spec: RunSpec, engines: Mapping[str, Engine], choice: str) -> str:
    if choice != AUTO:
        engine = engines[choice]
        if not engine.accepts(spec):
            raise UsageError(f"{choice!r}: {engine.refusal(spec)}", param="engine")
        return choice
    return next(name for name, engine in engines.items() if engine.accepts(spec))


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
