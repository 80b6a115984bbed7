"""How far each run got: its gap to the exact optimum of its own data, and when it reached
the target and stayed there.

Definitions (docs/usage.md repeats them):

* ``gap``: the loss at the run's final parameters, recomputed in float64 on the run's own
  samples, minus the optimum's loss (also float64). Per epoch (history), the recorded
  float32 loss minus the optimum: its resolution is float32 rounding (~1e-7 of the loss).
* ``rel_gap``: ``gap`` divided by the starting gap (the float64 gap at the initial
  parameters), so 1 means "no progress" and the target is scale-free.
* ``epochs_to_target``: the fewest epochs of training after which ``rel_gap`` stays at or
  below the target until the end (the state after k epochs is history epoch k + 1, and the
  final state after the last); a run that touches the target and leaves it has not reached
  it. ``seconds_to_target`` is that many epochs at the run's measured time per epoch.
* ``solved``: the run ended ``ok`` and reached the target.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .engine.records import ERROR, OK, RunResult
from .optimum import Optima, Optimum, OptimumError, mean_loss, samples64
from .options import DEFAULT_TARGET

if TYPE_CHECKING:
    from .plan import RunSpec
    from .task import Task


FAILED = "failed"
"""``optimum_method`` when the loss (or its solver) raised while computing the optimum."""


@dataclass
class Measures:
    """One run's optimum-relative columns and its per-epoch gap."""

    columns: dict[str, Any]
    gap_history: np.ndarray


class Measurer:
    """Measures every run against the optimum of its data and loss (cached per sweep)."""

    def __init__(self, target: float = DEFAULT_TARGET) -> None:
        self.target = target
        self.optima = Optima()
        self._samples: dict[Task, tuple[np.ndarray, np.ndarray]] = {}

    def measure_batch(
        self, specs: Sequence[RunSpec], results: Sequence[RunResult]
    ) -> list[Measures]:
        """Measures for the runs of one batch."""
        return [self.measure(s, r) for s, r in zip(specs, results, strict=True)]

    def measure(self, spec: RunSpec, result: RunResult) -> Measures:
        if result.status == ERROR or not result.weights:
            return Measures(_columns(None, self.target), np.zeros(0))
        try:
            optimum = self.optima.get(spec.task, spec.loss)
        except OptimumError as exc:
            columns = _columns(None, self.target)
            columns.update(optimum_method=FAILED, error=result.error or str(exc))
            return Measures(columns, np.full(result.epochs_run, np.nan))
        x, y = self._data(spec.task)
        hist = result.history
        weights = np.array([result.start_weights, result.weights], dtype=np.float64)
        start, final = mean_loss(spec.loss, x, y, weights, [hist["b"][0], result.b])
        start_gap, gap = start - optimum.loss, final - optimum.loss
        gap_history = hist["loss"] - optimum.loss
        states = np.append(gap_history, gap)
        rel = states / start_gap if start_gap > 0 else np.where(states <= 0, 0.0, np.inf)
        epochs = epochs_to_target(rel, self.target) if result.status == OK else None
        per_epoch = result.train_s / result.epochs_run if result.epochs_run else np.nan
        columns = _columns(optimum, self.target)
        columns.update(
            gap=float(gap),
            rel_gap=float(rel[-1]),
            param_dist=_distance(result.weights, result.b, optimum),
            solved=epochs is not None,
            epochs_to_target=np.nan if epochs is None else float(epochs),
            seconds_to_target=np.nan if epochs is None else float(epochs * per_epoch),
        )
        return Measures(columns, gap_history)

    def _data(self, task: Task) -> tuple[np.ndarray, np.ndarray]:
        if task not in self._samples:
            self._samples[task] = samples64(task)
        return self._samples[task]


def _distance(weights: Sequence[float], b: float, optimum: Optimum) -> float:
    """Euclidean distance from (weights, b) to the optimum's parameters."""
    diff = np.append(np.subtract(weights, optimum.w), b - optimum.b)
    return float(np.linalg.norm(diff))


def _columns(optimum: Optimum | None, target: float) -> dict[str, Any]:
    """The optimum's columns (empty without one) and empty per-run measures."""
    return {
        "optimum_loss": optimum.loss if optimum else np.nan,
        "w_opt": optimum.w[0] if optimum else np.nan,
        "b_opt": optimum.b if optimum else np.nan,
        "weights_opt": json.dumps(list(optimum.w)) if optimum else "",
        "optimum_method": optimum.method if optimum else "",
        "target": target,
        "gap": np.nan,
        "rel_gap": np.nan,
        "param_dist": np.nan,
        "solved": False,
        "epochs_to_target": np.nan,
        "seconds_to_target": np.nan,
    }


def epochs_to_target(rel_gaps: np.ndarray, target: float) -> int | None:
    """The first k such that every state from k on is within ``target`` (None if never).

    ``rel_gaps[k]`` is the relative gap after k epochs of training; NaN counts as outside.
    """
    outside = ~(rel_gaps <= target)
    if outside[-1]:
        return None
    last_outside = np.flatnonzero(outside)
    return 0 if last_outside.size == 0 else int(last_outside[-1]) + 1
