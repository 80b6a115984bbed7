"""The two result tables, ``runs`` and ``history``, and writing them safely to disk.

Every file is written to a temporary name in the same folder and then renamed over the
old one, so a crash never leaves a half-written file; the store is flushed after each
finished run or batch (at most every FLUSH_INTERVAL_S seconds) and always at the end,
including on Ctrl-C and errors, so finished runs are on disk before a later one can fail.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .engine import HISTORY_COLUMNS, OK, RunResult
from .plan import RunSpec
from .selection import Choice

FLUSH_INTERVAL_S = 0.5
TOLERANCE = 0.01
"""epochs_to_1pct: first epoch whose loss is within this fraction of the reference loss."""


class ResultsStore:
    """Collects finished runs and keeps ``out_dir`` up to date with them."""

    def __init__(self, out_dir: Path | None, meta: dict[str, Any], environment: dict[str, Any]):
        self.out_dir = out_dir
        self.meta = meta
        self.environment = environment
        self._rows: list[dict[str, Any]] = []
        self._histories: list[pd.DataFrame] = []
        self._last_flush = 0.0

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, spec: RunSpec, result: RunResult) -> None:
        self._rows.append(run_row(spec, result, self.environment))
        self._histories.append(history_frame(spec.run_id, result))

    def maybe_flush(self) -> None:
        """Flush unless the last flush was under FLUSH_INTERVAL_S ago (keeps big sweeps cheap)."""
        if time.monotonic() - self._last_flush >= FLUSH_INTERVAL_S:
            self.flush()

    def tables(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        runs = pd.DataFrame(self._rows)
        if not runs.empty:
            runs = runs.sort_values("run_id", ignore_index=True)
        runs = add_reference_columns(runs, self._histories)
        history = (
            pd.concat(sorted(self._histories, key=_run_id_of), ignore_index=True)
            if self._histories
            else pd.DataFrame(columns=["run_id", "epoch", *HISTORY_COLUMNS])
        )
        return runs, history

    def flush(self, **meta_updates: Any) -> None:
        """Write runs.parquet, runs.csv, history.parquet and meta.json atomically."""
        self._last_flush = time.monotonic()
        if self.out_dir is None:
            return
        self.meta.update(meta_updates, n_runs_saved=len(self._rows))
        runs, history = self.tables()
        atomic_write(self.out_dir / "runs.parquet", lambda p: runs.to_parquet(p, index=False))
        atomic_write(self.out_dir / "runs.csv", lambda p: runs.to_csv(p, index=False))
        atomic_write(self.out_dir / "history.parquet", lambda p: history.to_parquet(p, index=False))
        write_json(self.out_dir / "meta.json", self.meta)


def _run_id_of(frame: pd.DataFrame) -> int:
    return int(frame["run_id"].iloc[0]) if len(frame) else -1


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


def run_row(spec: RunSpec, result: RunResult, environment: dict[str, Any]) -> dict[str, Any]:
    """One row of the ``runs`` table: the spec, the plugins behind it, the outcome."""
    row: dict[str, Any] = {"run_id": spec.run_id}
    for kind, choice in (("optimizer", spec.optimizer), ("loss", spec.loss), ("init", spec.init)):
        row.update(_choice_columns(kind, choice))
    row.update(lr=spec.lr, seed=spec.seed, device=spec.device, epochs=spec.epochs)
    row.update(spec.task.as_dict())
    row.update(
        status=result.status,
        error=result.error,
        diverged_epoch=result.diverged_epoch,
        epochs_run=result.epochs_run,
        final_loss=result.final_loss,
        best_loss=_best(result),
        w=result.w,
        b=result.b,
        w_error=result.w - spec.task.w_true,
        b_error=result.b - spec.task.b_true,
        setup_s=result.setup_s,
        train_s=result.train_s,
        epoch_us=result.epoch_us,
        engine=result.engine,
        implementation=result.implementation,
    )
    row.update(environment.get(spec.device, {}))
    return row


def _choice_columns(kind: str, choice: Choice) -> dict[str, Any]:
    c = choice.component
    hp = {k: v for k, v in choice.params if k != "lr"}
    return {
        kind: choice.name,
        f"{kind}_params": json.dumps(hp, sort_keys=True, default=str),
        f"{kind}_label": choice.label(skip=("lr",)),
        f"{kind}_plugin": c.plugin,
        f"{kind}_dist": c.dist,
        f"{kind}_version": c.version,
    }


def _best(result: RunResult) -> float:
    losses = result.history.get("loss")
    candidates = [result.final_loss]
    if losses is not None and len(losses):
        candidates.append(float(np.nanmin(losses)) if np.isfinite(losses).any() else np.nan)
    finite = [v for v in candidates if np.isfinite(v)]
    return min(finite) if finite else float("nan")


def history_frame(run_id: int, result: RunResult) -> pd.DataFrame:
    n = result.epochs_run
    frame = pd.DataFrame({k: result.history.get(k, np.full(n, np.nan)) for k in HISTORY_COLUMNS})
    frame.insert(0, "epoch", np.arange(1, n + 1, dtype=np.int64))
    frame.insert(0, "run_id", np.full(n, run_id, dtype=np.int64))
    return frame


GROUP_FOR_REFERENCE = ["loss_label", "n_samples", "w_true", "b_true", "noise_std", "data_seed"]


def add_reference_columns(runs: pd.DataFrame, histories: list[pd.DataFrame]) -> pd.DataFrame:
    """``reference_loss``: the best loss any run reached on the same loss and data;
    ``epochs_to_1pct``: the first epoch a run came within 1% of it (NaN if never).

    A shared reference makes the column comparable across optimizers; it will give way to
    the exact optimum of the loss once gdbench computes one.
    """
    if runs.empty:
        return runs
    ok = runs["status"] == OK
    ref = runs[ok].groupby(GROUP_FOR_REFERENCE, dropna=False)["best_loss"].min()
    runs = runs.join(ref.rename("reference_loss"), on=GROUP_FOR_REFERENCE)
    by_id = {int(h["run_id"].iloc[0]): h["loss"].to_numpy() for h in histories if len(h)}
    runs["epochs_to_1pct"] = [
        _first_within(by_id.get(rid), r)
        for rid, r in zip(runs["run_id"], runs["reference_loss"], strict=False)
    ]
    return runs


def _first_within(losses: np.ndarray | None, reference: float) -> float:
    if losses is None or not np.isfinite(reference):
        return np.nan
    hits = np.flatnonzero(losses <= reference * (1 + TOLERANCE))
    return float(hits[0] + 1) if hits.size else np.nan
