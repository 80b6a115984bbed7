"""The two result tables, ``runs`` and ``history``: their columns, declared once, and the
functions that fill them.

The columns are public API — plugins receive both tables in ``gdbench_results_ready``,
users read them from ``runs.parquet`` and ``history.parquet`` — so each is declared here
with its one-line meaning, in order; ``docs/usage.md`` lists the same (a test keeps them
equal), and every other module reads columns by name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .engine.records import RunResult
from .kinds import KIND_NAMES
from .plan import RunSpec
from .selection import Choice
from .task import TASK_FIELDS, Task

if TYPE_CHECKING:
    from collections.abc import Sequence


def _kind_columns(kind: str) -> list[tuple[str, str]]:
    return [
        (kind, f"{kind} name"),
        (f"{kind}_params", f"{kind} hyper-parameters other than lr, as JSON"),
        (f"{kind}_label", f"{kind} name with the hyper-parameters that differ from its defaults"),
        (f"{kind}_plugin", f"plugin that registered the {kind}"),
        (f"{kind}_dist", "package (distribution) of that plugin"),
        (f"{kind}_version", "version of that package"),
    ]


RUNS_SCHEMA: tuple[tuple[str, str], ...] = (
    ("run_id", "position of the run in the sweep, from 0"),
    ("run_key", "hash of what determines the run (its spec, plugin versions, target)"),
    ("phase", "run (gdbench run), tune (a tuning trial) or eval (a tuned choice, held-out data)"),
    ("study", "tuning study, from 0 (empty outside gdbench tune)"),
    ("trial", "trial within its study, from 0; eval runs: the chosen trial (empty outside tune)"),
    *(column for kind in KIND_NAMES for column in _kind_columns(kind)),
    ("lr", "learning rate"),
    ("seed", "run seed: fixes the initial parameters"),
    ("device", "torch device the run trained on"),
    ("epochs", "epochs asked for"),
    *TASK_FIELDS,
    ("status", "ok, diverged, error (an exception in a plugin) or interrupted (stopped)"),
    ("error", "the exception, on one line: why the run or its optimum failed"),
    ("diverged_epoch", "first epoch with a non-finite loss (empty unless diverged)"),
    ("epochs_run", "epochs that ran (up to the divergence for diverged runs)"),
    ("final_loss", "loss at the parameters after the last step (float32, as trained)"),
    ("best_loss", "lowest finite loss seen, final loss included"),
    ("optimum_loss", "lowest possible loss on this run's data (float64)"),
    ("optimum_method", "exact (the loss's solver), numerical, or failed (see error)"),
    ("gap", "float64 loss at the final parameters minus optimum_loss"),
    ("rel_gap", "gap divided by the gap at the initial parameters"),
    ("target", "the rel_gap a run must reach and keep to be solved"),
    ("solved", "ended ok with rel_gap at or below target from epochs_to_target on"),
    ("epochs_to_target", "fewest epochs after which rel_gap stays within target (empty: never)"),
    ("seconds_to_target", "epochs_to_target at the run's measured time per epoch"),
    ("w", "final weight (of the first feature)"),
    ("b", "final intercept"),
    ("weights", "every final weight, as a JSON list"),
    ("w_opt", "weight (of the first feature) at the optimum"),
    ("b_opt", "intercept at the optimum"),
    ("weights_opt", "every weight at the optimum, as a JSON list"),
    ("param_dist", "distance from (weights, b) to (weights_opt, b_opt)"),
    ("w_error", "w minus w_opt"),
    ("b_error", "b minus b_opt"),
    ("w_true_error", "w minus w_true (sampling and optimization error together)"),
    ("b_true_error", "b minus the true intercept"),
    ("setup_s", "seconds to initialise the run (its share of its batch's)"),
    ("train_s", "seconds of training (its share of its batch's)"),
    ("epoch_us", "microseconds per epoch: train_s / epochs_run"),
    ("engine", "engine that ran it: sequential or batched"),
    ("implementation", "optimizer code path: for-loop, foreach, fused, or custom (own step)"),
    ("batch_size", "runs advanced together in its batch (1 on the sequential engine)"),
    ("compiled", "whether the batch's step ran under torch.compile"),
    ("engine_note", "why a batch asked to compile ran eagerly (empty otherwise)"),
    ("device_name", "hardware behind the device"),
    ("torch_version", "torch version"),
    ("gdbench_version", "gdbench version"),
)
"""(column, meaning) of the runs table, one row per run, in order."""

HISTORY_SCHEMA: tuple[tuple[str, str], ...] = (
    ("run_id", "the run (see the runs table)"),
    ("epoch", "epoch, from 1"),
    ("loss", "loss of this epoch's forward pass (parameters after epoch - 1 steps)"),
    ("gap", "loss minus the run's optimum_loss (float32 resolution, ~1e-7 of the loss)"),
    ("grad_norm", "norm of the gradient with respect to (w, b) at those parameters"),
    ("w", "weight (of the first feature) at those parameters"),
    ("b", "intercept at those parameters"),
)
"""(column, meaning) of the history table, one row per run per epoch, in order."""

RUNS_COLUMNS: tuple[str, ...] = tuple(name for name, _ in RUNS_SCHEMA)
HISTORY_COLUMNS: tuple[str, ...] = tuple(name for name, _ in HISTORY_SCHEMA)
PER_EPOCH = ("loss", "grad_norm", "w", "b")
"""The per-epoch values every engine records (``RunResult.history``'s keys)."""


def schema_markdown(schema: Sequence[tuple[str, str]]) -> str:
    """A Markdown table of (column, meaning): docs/usage.md holds these, kept equal by a
    test, so that the docs list exactly the columns the code writes."""
    rows = [f"| `{name}` | {meaning} |" for name, meaning in schema]
    return "\n".join(["| column | meaning |", "|---|---|", *rows])


@dataclass
class Results:
    """What a sweep produced: the two tables, and where they were written (if anywhere)."""

    runs: pd.DataFrame
    """One row per run; columns ``RUNS_COLUMNS``."""
    history: pd.DataFrame
    """One row per run per epoch; columns ``HISTORY_COLUMNS``."""
    out_dir: Path | None
    """The results folder, or None for an in-memory sweep."""
    complete: bool = True
    """False when the sweep did not finish (interrupted, or an exception)."""
    interrupted: str | None = None
    """The signal that stopped the sweep (``SIGINT``, ``SIGTERM``), or None."""
    planned: int | None = None
    """Runs the sweep describes (a resumed sweep computes only those not yet saved)."""

    def summary(self) -> pd.DataFrame:
        """One row per configuration, as the CLI prints it."""
        from .report import summary

        return summary(self.runs)

    def profiles(self) -> pd.DataFrame:
        """Performance profiles of time to target across workloads, as in
        ``profiles.parquet`` (see ``gdbench.profiles``)."""
        from .profiles import compute_profiles

        return compute_profiles(self.runs)


def run_row(
    spec: RunSpec,
    result: RunResult,
    environment: dict[str, Any],
    measures: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One row of the ``runs`` table; ``measures`` are the optimum-relative columns
    (``measure.Measurer``), left empty when not given."""
    row: dict[str, Any] = {"run_id": spec.run_id, "phase": "run"}
    if measures:
        row["run_key"] = spec.key(measures["target"])
    for kind, choice in zip(KIND_NAMES, spec.choices, strict=True):
        row.update(_choice_columns(kind, choice))
    row.update(lr=spec.lr, seed=spec.seed, device=spec.device, epochs=spec.epochs)
    row.update(spec.task.as_dict())
    row.update(
        status=result.status,
        error=result.error,
        diverged_epoch=result.diverged_epoch,
        epochs_run=result.epochs_run,
        final_loss=result.final_loss,
        best_loss=best_loss_of(result),
        w=result.w,
        b=result.b,
        weights=json.dumps(list(result.weights)),
        w_true_error=result.w - spec.task.w_true,
        b_true_error=result.b - spec.task.b_true,
        setup_s=result.setup_s,
        train_s=result.train_s,
        epoch_us=result.epoch_us,
        engine=result.engine,
        implementation=result.implementation,
        batch_size=result.batch_size,
        compiled=result.compiled,
        engine_note=result.engine_note,
    )
    row.update(environment.get(spec.device, {}))
    row.update(measures or {})
    if measures:
        row.update(w_error=result.w - measures["w_opt"], b_error=result.b - measures["b_opt"])
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


def best_loss_of(result: RunResult) -> float:
    if result.best_loss is not None:
        return result.best_loss
    losses = result.history.get("loss")
    candidates = [result.final_loss]
    if losses is not None and len(losses):
        candidates.append(float(np.nanmin(losses)) if np.isfinite(losses).any() else np.nan)
    finite = [v for v in candidates if np.isfinite(v)]
    return min(finite) if finite else float("nan")


def history_batch(
    run_ids: Sequence[int], results: Sequence[RunResult], gaps: Sequence[np.ndarray | None]
) -> pd.DataFrame:
    """The ``history`` rows of several runs (a batch), built as one frame (per-run frames
    cost ~1.5 ms each in pandas, more than training a run in a large batch); ``gaps``
    per run and epoch, NaN where None. Missing per-epoch values are NaN."""
    lengths = [r.epochs_run for r in results]
    columns: dict[str, np.ndarray] = {
        "run_id": np.repeat(np.asarray(run_ids, dtype=np.int64), lengths),
        "epoch": np.concatenate(
            [np.arange(1, n + 1, dtype=np.int64) for n in lengths] or [np.zeros(0, np.int64)]
        ),
    }
    for name in (*PER_EPOCH, "gap"):
        parts = [_per_epoch(r, g, name) for r, g in zip(results, gaps, strict=True)]
        columns[name] = np.concatenate(parts) if parts else np.zeros(0)
    return pd.DataFrame(columns)[list(HISTORY_COLUMNS)].astype(
        {"run_id": "int64", "epoch": "int64"}
    )


def _per_epoch(result: RunResult, gap: np.ndarray | None, name: str) -> np.ndarray:
    n = result.epochs_run
    values = gap if name == "gap" else result.history.get(name)
    if values is None or len(values) != n:
        return np.full(n, np.nan)
    return np.asarray(values, dtype=np.float64)


def data_frame(task: Task) -> pd.DataFrame:
    """The task's samples exactly as the runs train on them (float32), by data seed:
    columns ``data_seed``, ``sample``, ``x`` (``x0``, ``x1``, … for several features),
    ``y``."""
    x, y = task.data("cpu")
    n = task.n_samples
    names = ["x"] if task.dim == 1 else [f"x{j}" for j in range(task.dim)]
    columns: dict[str, Any] = {
        "data_seed": np.full(n, task.data_seed, dtype=np.int64),
        "sample": np.arange(n, dtype=np.int64),
    }
    columns.update(zip(names, x.numpy().T, strict=True))
    columns["y"] = y.numpy().reshape(-1)
    return pd.DataFrame(columns)


def runs_table(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """The ``runs`` table from per-run rows, in run order, columns as declared."""
    runs = pd.DataFrame(list(rows), columns=list(RUNS_COLUMNS))
    return runs.sort_values("run_id", ignore_index=True)


def history_table(histories: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The ``history`` table: every run's rows, in run order (a stable sort keeps each
    run's epochs in order)."""
    frames = [h for h in histories if len(h)]
    if not frames:
        return _empty_history()
    table = pd.concat(frames, ignore_index=True)[list(HISTORY_COLUMNS)]
    return table.sort_values("run_id", kind="stable", ignore_index=True)


def _empty_history() -> pd.DataFrame:
    dtypes = {"run_id": "int64", "epoch": "int64"}
    return pd.DataFrame({c: pd.Series(dtype=dtypes.get(c, "float64")) for c in HISTORY_COLUMNS})


def update_docs(path: Path) -> bool:
    """Rewrite the column tables between ``<!-- runs-columns -->`` and
    ``<!-- history-columns -->`` markers in a Markdown file; True if it changed."""
    from .profiles import PROFILES_SCHEMA

    text = path.read_text()
    new = text
    for marker, schema in (("runs-columns", RUNS_SCHEMA), ("history-columns", HISTORY_SCHEMA),
                           ("profiles-columns", PROFILES_SCHEMA)):  # fmt: skip
        opening, closing = f"<!-- {marker} -->\n", f"\n<!-- /{marker} -->"
        head, found, rest = new.partition(opening)
        _, found_end, tail = rest.partition(closing)
        if found and found_end:
            new = head + opening + schema_markdown(schema) + closing + tail
    if new != text:
        path.write_text(new)
    return new != text


if __name__ == "__main__":  # python -m gdbench.results docs/usage.md
    import sys

    for name in sys.argv[1:]:
        print(f"{name}: {'updated' if update_docs(Path(name)) else 'up to date'}")
