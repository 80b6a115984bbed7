"""The results folder: append-only while a sweep runs, compacted when it ends.

Each finished batch is written once, as two parts: ``parts/history-NNNNN.parquet`` first,
then ``parts/runs-NNNNN.parquet``; a batch (and each of its runs) is saved exactly when
its runs part exists. Every file is written under a temporary name and renamed into
place, so a kill leaves at most a stale temporary file (ignored by readers, removed on
the next open) and never a half-written part. Nothing is rewritten as the sweep grows:
the cost per batch is constant, and history is not kept in memory.

When the sweep ends — finished, interrupted or failed — the parts are compacted into the
``runs.parquet``, ``runs.csv`` and ``history.parquet`` users know, atomically, and the
parts removed. ``load(folder)`` reads a folder in any state: compacted files plus complete
parts, the newest row of each run winning (a resumed run replaces its interrupted row).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .engine.records import RunResult
from .errors import UsageError
from .measure import Measurer, Measures
from .options import HistoryPolicy, SweepOptions
from .plan import RunSpec
from .results import (
    HISTORY_COLUMNS,
    RUNS_COLUMNS,
    Results,
    data_frame,
    history_batch,
    history_table,
    run_row,
    runs_table,
)

PARTS = "parts"


class ResultsStore:
    """Keeps a sweep's results: in memory, and in ``out_dir`` (if any) as parts."""

    def __init__(
        self,
        out_dir: Path | None,
        meta: dict[str, Any],
        environment: dict[str, Any],
        measurer: Measurer | None = None,
        history: HistoryPolicy | None = None,
    ) -> None:
        self.out_dir = out_dir
        self.meta = meta
        self.environment = environment
        self.measurer = measurer or Measurer()
        self.history = history or HistoryPolicy()
        self._rows: list[dict[str, Any]] = []
        self._frames: list[pd.DataFrame] = []  # history, kept only without a folder
        self._next_part = 0
        if out_dir is not None:
            self._open(out_dir)

    def _open(self, out_dir: Path) -> None:
        """Clean stale temporary files, continue the part numbering, and make sure
        runs.csv is readable (a header at least) before any run finishes."""
        parts = out_dir / PARTS
        parts.mkdir(exist_ok=True)
        for stale in [*out_dir.glob(".*.tmp"), *parts.glob(".*.tmp")]:
            stale.unlink(missing_ok=True)
        numbers = [int(p.stem.rsplit("-", 1)[1]) for p in parts.glob("runs-*.parquet")]
        self._next_part = max(numbers, default=-1) + 1
        if not (out_dir / "runs.csv").exists():
            header = pd.DataFrame(columns=list(RUNS_COLUMNS))
            atomic_write(out_dir / "runs.csv", lambda p: header.to_csv(p, index=False))
        self.flush()

    def __len__(self) -> int:
        return len(self._rows)

    def add_batch(
        self,
        specs: Sequence[RunSpec],
        results: Sequence[RunResult],
        measures: Sequence[Measures] | None = None,
        history: pd.DataFrame | None = None,
    ) -> None:
        """Save a finished batch (history part, then runs part); only then does it count
        as saved. ``measures`` against the optimum and the ``history`` rows (already
        thinned by the history policy) are computed here unless given: a worker that ran
        the batch made them already."""
        if measures is None:
            measures = self.measurer.measure_batch(specs, results)
        rows = [
            run_row(spec, result, self.environment, m.columns)
            for spec, result, m in zip(specs, results, measures, strict=True)
        ]
        if history is None:
            history = self.history.keep(
                history_batch([s.run_id for s in specs], results, [m.gap_history for m in measures])
            )
        if self.out_dir is not None:
            self._write_part(runs_table(rows), history)
        else:
            self._frames.append(history)
        self._rows.extend(rows)

    def _write_part(self, runs: pd.DataFrame, history: pd.DataFrame) -> None:
        assert self.out_dir is not None
        parts = self.out_dir / PARTS
        n = f"{self._next_part:05d}"
        atomic_write(parts / f"history-{n}.parquet", lambda p: history.to_parquet(p, index=False))
        atomic_write(parts / f"runs-{n}.parquet", lambda p: runs.to_parquet(p, index=False))
        self._next_part += 1

    def write_inputs(self, options: SweepOptions) -> None:
        """What the sweep starts from: ``data.parquet`` (the exact float32 samples of
        every data seed, so anyone can recompute the optima and gaps) and ``sweep.toml``
        (its resolved options, so ``--config`` reruns it)."""
        from . import config

        if self.out_dir is None:
            return
        table = pd.concat([data_frame(task) for task in options.tasks], ignore_index=True)
        atomic_write(self.out_dir / "data.parquet", lambda p: table.to_parquet(p, index=False))
        text = config.dumps(options)
        atomic_write(self.out_dir / config.FILE, lambda p: p.write_text(text))

    def flush(self, **meta_updates: Any) -> None:
        """Record progress in meta.json (the parts themselves are already on disk)."""
        if self.out_dir is None:
            return
        self.meta.update(meta_updates, n_runs_saved=len(self._rows))
        write_json(self.out_dir / "meta.json", self.meta)

    def finish(self, **meta_updates: Any) -> Results:
        """Compact the folder (if any) and return the sweep's tables."""
        if self.out_dir is None:
            return Results(runs_table(self._rows), history_table(self._frames), None)
        results = compact(self.out_dir)
        self.flush(**meta_updates)
        self.meta["n_runs_saved"] = len(results.runs)  # a resumed folder: every run in it
        write_json(self.out_dir / "meta.json", self.meta)
        return results


def load(folder: str | Path) -> Results:
    """A results folder's tables, whatever its state: the compacted files plus every
    complete part (a batch whose runs part exists), the newest row of each run winning.
    Temporary files and incomplete parts are ignored."""
    folder = Path(folder)
    sources: list[tuple[pd.DataFrame, Path | None]] = []
    if (folder / "runs.parquet").exists():
        history = folder / "history.parquet"
        sources.append((pd.read_parquet(folder / "runs.parquet"), history))
    for runs_part in sorted((folder / PARTS).glob("runs-*.parquet")):
        history = runs_part.with_name(runs_part.name.replace("runs-", "history-"))
        sources.append((pd.read_parquet(runs_part), history))
    if not sources:
        empty = runs_table([])
        return Results(empty, history_table([]), folder, complete=_complete(folder))
    return _merge(folder, sources)


def _merge(folder: Path, sources: list[tuple[pd.DataFrame, Path | None]]) -> Results:
    """The newest row per run_id across sources, and the history rows of those rows."""
    tagged = [runs.assign(_source=i) for i, (runs, _) in enumerate(sources)]
    runs = pd.concat(tagged, ignore_index=True).drop_duplicates("run_id", keep="last")
    histories = []
    for i, (_, path) in enumerate(sources):
        if path is None or not path.exists():
            continue
        history = pd.read_parquet(path)
        kept = runs.loc[runs["_source"] == i, "run_id"]
        histories.append(history[history["run_id"].isin(kept)])
    runs = runs.drop(columns="_source").sort_values("run_id", ignore_index=True)
    return Results(
        runs.reindex(columns=list(RUNS_COLUMNS)),  # a folder from before a column: empty
        history_table(histories)[list(HISTORY_COLUMNS)],
        folder,
        complete=_complete(folder),
    )


def _complete(folder: Path) -> bool:
    try:
        return bool(json.loads((folder / "meta.json").read_text()).get("complete"))
    except (OSError, ValueError):
        return False


def compact(folder: Path) -> Results:
    """Write ``load(folder)`` as runs.parquet, runs.csv and history.parquet (each
    atomically), then remove the parts. A kill in between is harmless: loading again
    gives the same tables."""
    results = load(folder)
    runs, history = results.runs, results.history
    atomic_write(folder / "history.parquet", lambda p: history.to_parquet(p, index=False))
    atomic_write(folder / "runs.parquet", lambda p: runs.to_parquet(p, index=False))
    atomic_write(folder / "runs.csv", lambda p: runs.to_csv(p, index=False))
    parts = folder / PARTS
    for part in parts.glob("*.parquet"):
        part.unlink()
    if parts.exists() and not any(parts.iterdir()):
        parts.rmdir()
    return results


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
