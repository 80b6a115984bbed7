"""Look before leaping: what a sweep will cost, known before it is planned.

The size comes from the selection alone (no RunSpec is built, so a ten-million-run
sweep is judged in milliseconds); the time from a short probe of the first
configuration (a few timed steps of up to 256 runs); disk and memory from the rows the
tables will hold. A sweep that cannot fit on disk or in memory is refused with a
one-line error naming the option that shrinks it.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .engine.schedule import Batch
    from .options import SweepOptions
    from .selection import Selection

from .errors import UsageError

US_PER_RUN_EPOCH = {"batched": 6.0, "sequential": 250.0}
"""Rough cost per run-epoch on one CPU thread (docs/performance.md): for decisions that
need no precision (batch sizes, whether a cluster could pay off); announced times come
from a probe."""
LOOK_S = 30.0
"""Sweeps estimated to take longer than this are announced before they start."""
RUN_ROW_BYTES = 2_000
"""A runs-table row: ~70 columns, strings included (in memory and on disk, generous)."""
HISTORY_ROW_BYTES = 7 * 8
"""A history row: seven 8-byte columns (parquet barely compresses float64 curves)."""
COMPACTION_COPIES = 3
"""Compaction holds the history about three times at once (parts, concatenation, sort)."""


@dataclass(frozen=True)
class Estimate:
    runs: int
    epochs: int
    history_rows: int
    seconds: float | None
    """From a probe; None when not probed (small sweeps)."""

    @property
    def disk_bytes(self) -> int:
        return self.runs * RUN_ROW_BYTES + self.history_rows * HISTORY_ROW_BYTES

    @property
    def memory_bytes(self) -> int:
        return self.runs * RUN_ROW_BYTES + COMPACTION_COPIES * self.history_rows * (
            HISTORY_ROW_BYTES
        )

    def describe(self) -> str:
        time_text = (
            f"about {_duration(self.seconds)} here (measured by a probe), "
            if (self.seconds is not None)
            else ""
        )
        return (
            f"{self.runs:,} runs × {self.epochs:,} epochs: {time_text}~{_size(self.disk_bytes)} "
            f"on disk, ~{_size(self.memory_bytes)} of memory at the end"
        )


def sweep_size(selection: Selection, options: SweepOptions, n_devices: int) -> int:
    combos = math.prod(len(selection.of(k)) for k in selection.choices)
    return n_devices * len(options.tasks) * combos * len(options.seeds)


def estimate(selection: Selection, options: SweepOptions, devices: list[str]) -> Estimate:
    """Size, disk and memory of the sweep; its time too when that may exceed LOOK_S."""
    runs = sweep_size(selection, options, len(devices))
    check_record(options)
    every = options.history.every
    kept = 0 if every is None else min(options.epochs, math.ceil(options.epochs / every) + 1)
    rough = runs * options.epochs * US_PER_RUN_EPOCH["batched"] * 1e-6
    seconds = None
    if rough > LOOK_S:
        seconds = runs * options.epochs * probe(selection, options, devices[0]) * 1e-6
    return Estimate(runs, options.epochs, runs * kept, seconds)


def check_record(options: SweepOptions) -> None:
    """Refuse epochs whose per-run record alone cannot fit in memory (``--epochs 2e9``
    would ask for tens of GB before the first step). The engines keep a run's per-epoch
    record (``engine.records.Layout``: loss, gradients, parameters; float32) until it
    ends, and a history row per epoch follows it."""
    need = options.epochs * ((2 * options.task.dim + 3) * 4 + HISTORY_ROW_BYTES)
    available = available_memory()
    if need > available:
        raise UsageError(
            f"needs ~{_size(need)} of memory per run for its per-epoch record, "
            f"{_size(available)} available; use fewer epochs",
            param="epochs",
        )


def rough_seconds(batches: Sequence[Batch]) -> float:
    """Compute time of ``batches`` on one thread, from per-engine costs per run-epoch."""
    return sum(
        len(b.specs) * b.specs[0].epochs * US_PER_RUN_EPOCH.get(b.engine, 250.0) * 1e-6
        for b in batches
    )


def probe(selection: Selection, options: SweepOptions, device: str) -> float:
    """µs per run-epoch of the first configuration: a few timed steps of up to 256 runs
    on the engine that would run it."""
    from .engine import make_engines
    from .kinds import KIND_NAMES
    from .plan import RunSpec

    choices = tuple(selection.of(kind)[0] for kind in KIND_NAMES)
    engines = make_engines()
    name = "batched" if options.engine != "sequential" else "sequential"
    steps = min(5, options.epochs)
    epochs = min(options.epochs, steps + 2)  # the record need not hold the whole sweep
    specs = [RunSpec(0, choices, 0, device, epochs, options.tasks[0])]
    if name == "batched" and engines["batched"].accepts(specs[0]):
        n = min(256, len(options.seeds) * len(options.tasks) * 8)
        specs = [RunSpec(i, choices, i, device, epochs, options.tasks[0]) for i in range(n)]
    else:
        name = "sequential"
    trainer = engines[name].trainer(specs, options.tasks[0].data(device))
    for epoch in range(min(2, epochs)):
        trainer.step(epoch)
    start = time.perf_counter()
    for epoch in range(steps):
        trainer.step(epoch)
    return 1e6 * (time.perf_counter() - start) / (steps * len(specs))


def check_fits(plan: Estimate, out: Path | None) -> None:
    """Refuse what cannot fit on the results' disk or in memory, naming the remedy."""
    shrink = "use --history every:K or --history none, or fewer runs"
    if out is not None:
        parent = next((p for p in [out, *out.parents] if p.exists()), Path("."))
        free = shutil.disk_usage(parent).free
        if plan.disk_bytes > free:
            raise UsageError(
                f"this sweep needs ~{_size(plan.disk_bytes)} of disk for {plan.runs:,} runs × "
                f"{plan.epochs:,} epochs of history, {_size(free)} free under {str(parent)!r}; "
                f"{shrink}"
            )
    available = available_memory()
    if plan.memory_bytes > available:
        raise UsageError(
            f"this sweep needs ~{_size(plan.memory_bytes)} of memory for {plan.runs:,} runs × "
            f"{plan.epochs:,} epochs of history, {_size(available)} available; {shrink}"
        )


def available_memory() -> int:
    """MemAvailable on Linux; free pages elsewhere."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os

    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
