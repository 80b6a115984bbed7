"""The results folder: made once per sweep, kept up to date as runs finish, never half
written.

Every file is written to a temporary name in the same folder and then renamed over the
old one, so a crash never leaves a half-written file; the store is flushed after each
finished run or batch (at most every FLUSH_INTERVAL_S seconds) and always at the end,
including on Ctrl-C and errors, so finished runs are on disk before a later one can fail.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .engine.records import RunResult
from .errors import UsageError
from .measure import Measurer
from .plan import RunSpec
from .results import data_frame, history_batch, history_table, run_row, runs_table
from .task import Task

FLUSH_INTERVAL_S = 0.5
FILES = ("runs.parquet", "runs.csv", "history.parquet", "meta.json")


class ResultsStore:
    """Collects finished runs and keeps ``out_dir`` (if any) up to date with them."""

    def __init__(
        self,
        out_dir: Path | None,
        meta: dict[str, Any],
        environment: dict[str, Any],
        measurer: Measurer | None = None,
    ) -> None:
        self.out_dir = out_dir
        self.meta = meta
        self.environment = environment
        self.measurer = measurer or Measurer()
        self._batches: list[tuple[list[dict[str, Any]], pd.DataFrame]] = []
        """(runs rows, history rows) per finished batch, appended together so that an
        interrupt can never leave one without the other."""
        self._last_flush = 0.0

    def __len__(self) -> int:
        return sum(len(rows) for rows, _ in self._batches)

    def add_batch(self, specs: Sequence[RunSpec], results: Sequence[RunResult]) -> None:
        """Measure a finished batch against its optimum and keep its rows."""
        measures = self.measurer.measure_batch(specs, results)
        rows = [
            run_row(spec, result, self.environment, m.columns)
            for spec, result, m in zip(specs, results, measures, strict=True)
        ]
        history = history_batch(
            [s.run_id for s in specs], results, [m.gap_history for m in measures]
        )
        self._batches.append((rows, history))

    def write_data(self, tasks: Sequence[Task]) -> None:
        """``data.parquet``: the exact float32 samples of every task, by data seed, so that
        anyone can recompute the optima and gaps."""
        if self.out_dir is None:
            return
        frames = [data_frame(task) for task in tasks]
        table = pd.concat(frames, ignore_index=True)
        atomic_write(self.out_dir / "data.parquet", lambda p: table.to_parquet(p, index=False))

    def maybe_flush(self) -> None:
        """Flush unless the last flush was under FLUSH_INTERVAL_S ago (keeps big sweeps cheap)."""
        if time.monotonic() - self._last_flush >= FLUSH_INTERVAL_S:
            self.flush()

    def tables(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        batches = list(self._batches)
        rows = [row for batch_rows, _ in batches for row in batch_rows]
        return runs_table(rows), history_table([h for _, h in batches])

    def flush(self, **meta_updates: Any) -> None:
        """Write runs.parquet, runs.csv, history.parquet and meta.json atomically."""
        self._last_flush = time.monotonic()
        if self.out_dir is None:
            return
        runs, history = self.tables()
        self.meta.update(meta_updates, n_runs_saved=len(runs))
        atomic_write(self.out_dir / "runs.parquet", lambda p: runs.to_parquet(p, index=False))
        atomic_write(self.out_dir / "runs.csv", lambda p: runs.to_csv(p, index=False))
        atomic_write(self.out_dir / "history.parquet", lambda p: history.to_parquet(p, index=False))
        write_json(self.out_dir / "meta.json", self.meta)


def atomic_write(path: Path, write: Callable[[Path], Any]) -> None:
    """Write through a temporary file in the same folder, then rename over ``path``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path: Path, data: dict[str, Any]) -> None:
    text = json.dumps(data, indent=2, default=str) + "\n"
    atomic_write(path, lambda p: p.write_text(text))


def make_out_dir(parent: str | Path) -> Path:
    """A new, writable folder under ``parent``, named by the time of the invocation."""
    parent = Path(parent)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        out = _new_folder(parent, stamp)
        probe = out / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UsageError(
            f"{str(parent)!r} is not writable ({reason}); choose another folder", param="out"
        ) from None
    return out


def _new_folder(parent: Path, stamp: str) -> Path:
    for n in range(1000):
        out = parent / (stamp if n == 0 else f"{stamp}-{n}")
        try:
            out.mkdir()
            return out
        except FileExistsError:
            continue
    raise FileExistsError(f"no free folder name under {parent}")
