"""What every engine records and returns: the per-epoch record, the divergence rule, and
the ``RunResult`` built from them.

An engine keeps one record tensor of shape (epochs, Layout(dim).size, R) on the device —
row ``epoch`` holds that epoch's loss, gradient and parameters for each of its R runs — and
copies nothing to the host inside the loop except for the divergence check every
``CHECK_EVERY`` epochs. Everything after the loop (history, final values, statuses) is
derived here, once, for every engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import one_line

if TYPE_CHECKING:
    import torch

    from ..plan import RunSpec


@dataclass(frozen=True)
class Layout:
    """Where each value sits in a record row, for a model with ``dim`` weights:
    ``loss, grad_w[0..dim), grad_b, w[0..dim), b`` (for one feature: loss, dL/dw, dL/db,
    w, b)."""

    dim: int = 1

    @property
    def size(self) -> int:
        return 2 * self.dim + 3

    @property
    def grad_w(self) -> slice:
        return slice(1, 1 + self.dim)

    @property
    def grad_b(self) -> int:
        return 1 + self.dim

    @property
    def w(self) -> slice:
        return slice(2 + self.dim, 2 + 2 * self.dim)

    @property
    def b(self) -> int:
        return 2 + 2 * self.dim


LOSS = 0
"""The loss sits first in every layout."""

CHECK_EVERY = 32
"""Epochs between NaN/inf checks: each check costs a host synchronisation."""

OK, DIVERGED, ERROR, INTERRUPTED = "ok", "diverged", "error", "interrupted"


@dataclass
class RunResult:
    """The outcome of one run: status, final state, per-epoch history and timings.

    ``history`` maps each per-epoch column (``loss``, ``grad_norm``, ``w``, ``b``) to an
    array with one value per epoch that ran; the loss of epoch e is the loss of the
    forward pass of epoch e (the parameters after e - 1 steps), as the notebook prints
    it. ``final_loss`` is the loss at the parameters after the last step.
    """

    run_id: int
    status: str
    epochs_run: int
    final_loss: float = float("nan")
    w: float = float("nan")
    b: float = float("nan")
    weights: tuple[float, ...] = ()
    """Every final weight (``w`` is the first); with ``start_weights``, the initial ones."""
    start_weights: tuple[float, ...] = ()
    history: dict[str, np.ndarray] = field(default_factory=dict)
    error: str = ""
    diverged_epoch: int | None = None
    setup_s: float = 0.0
    train_s: float = 0.0
    engine: str = ""
    implementation: str = ""
    batch_size: int = 1
    compiled: bool = False
    engine_note: str = ""
    best_loss: float | None = None
    """The lowest loss of the run, kept when ``history`` was dropped (a Dask worker that
    built the history rows itself sends only those, not every per-epoch array)."""

    @property
    def epoch_us(self) -> float:
        return 1e6 * self.train_s / self.epochs_run if self.epochs_run else float("nan")


@dataclass(frozen=True)
class EngineInfo:
    """How a batch was executed, copied into each of its runs' results."""

    engine: str
    implementation: str = ""
    compiled: bool = False
    note: str = ""


class Divergence:
    """The divergence rule: a run diverges at its first epoch whose loss is non-finite or
    exceeds ``factor`` times its starting loss (the loss of epoch 1).

    ``at[i]`` is that epoch (counting from 1) for run i, or 0 while it has not diverged.
    A run that starts at loss 0 diverges only by going non-finite.
    """

    def __init__(self, runs: int, factors: Sequence[float] | None = None) -> None:
        self.at = np.zeros(runs, dtype=np.int64)
        self.factors = np.full(runs, np.inf) if factors is None else np.asarray(factors, float)
        self._limit: torch.Tensor | None = None

    def due(self, epoch: int, epochs: int) -> bool:
        """Whether to check after ``epoch`` (0-based): every CHECK_EVERY epochs and last."""
        return (epoch + 1) % CHECK_EVERY == 0 or epoch + 1 == epochs

    def check(self, rec: torch.Tensor, epoch: int) -> bool:
        """Mark runs whose loss went non-finite since the last check; True if any did."""
        import torch

        start = max(0, epoch + 1 - CHECK_EVERY)
        window = rec[start : epoch + 1, LOSS, :]  # (window, R)
        bad = ~torch.isfinite(window) | (window > self._limits(rec))
        if not bool(bad.any()):
            return False
        first = bad.int().argmax(dim=0).cpu().numpy()
        any_bad = bad.any(dim=0).cpu().numpy()
        new = any_bad & (self.at == 0)
        self.at[new] = start + first[new] + 1
        return bool(new.any())

    def _limits(self, rec: torch.Tensor) -> torch.Tensor:
        """factor × starting loss per run (inf where the start is 0 or not finite)."""
        import torch

        if self._limit is None:
            first = rec[0, LOSS, :].double()
            factors = torch.as_tensor(self.factors, dtype=torch.float64, device=rec.device)
            ok = (first > 0) & torch.isfinite(first)
            limit = torch.where(ok, factors * first, torch.full_like(first, float("inf")))
            self._limit = limit.to(rec.dtype)
        return self._limit

    @property
    def all(self) -> bool:
        return bool((self.at > 0).all())


def epoch_metrics(row: torch.Tensor, layout: Layout) -> dict[str, float]:
    """One run's record row as the metrics ``gdbench_epoch_end`` receives."""
    values = row.tolist()
    grads = [*values[layout.grad_w], values[layout.grad_b]]
    return {
        "loss": values[LOSS],
        "grad_norm": sum(g * g for g in grads) ** 0.5,
        "w": values[layout.w][0],
        "b": values[layout.b],
    }


def history(rec: np.ndarray, layout: Layout) -> dict[str, np.ndarray]:
    """Per-epoch columns from one run's record, shape (epochs, layout.size), in float64;
    ``w`` is the first weight, ``grad_norm`` covers every weight and the bias."""
    grad_w = rec[:, layout.grad_w]
    grad_w = grad_w[:, 0] if layout.dim == 1 else np.linalg.norm(grad_w, axis=1)
    return {
        "loss": rec[:, LOSS].copy(),
        "grad_norm": np.hypot(grad_w, rec[:, layout.grad_b]),
        "w": rec[:, layout.w.start].copy(),
        "b": rec[:, layout.b].copy(),
    }


def results(
    specs: Sequence[RunSpec],
    rec: torch.Tensor,
    divergence: Divergence,
    epochs_run: int,
    final: tuple[np.ndarray, np.ndarray, np.ndarray],
    timings: tuple[float, float],
    info: EngineInfo,
    interrupted: bool = False,
) -> list[RunResult]:
    """One result per spec from the record of a finished (or interrupted) batch.

    ``final`` is (loss (R,), w (R, dim), b (R,)) after the last step; a diverged run ends
    where it diverged instead (its last recorded epoch). Setup and training times are the
    batch's, shared equally by its runs (the cost per run-epoch).
    """
    import torch

    layout = Layout(specs[0].task.dim)
    arr = rec[:epochs_run].to("cpu", torch.float64).numpy()
    final_loss, w_final, b_final = final
    w_final = np.asarray(w_final, dtype=np.float64).reshape(len(specs), layout.dim)
    runs = len(specs)
    out = []
    for i, spec in enumerate(specs):
        diverged = bool(divergence.at[i] > 0)
        n = int(divergence.at[i]) if diverged else epochs_run
        hist = history(arr[:n, :, i], layout)
        weights = arr[n - 1, layout.w, i] if diverged else w_final[i]
        out.append(
            RunResult(
                spec.run_id,
                DIVERGED if diverged else INTERRUPTED if interrupted else OK,
                n,
                final_loss=float(hist["loss"][-1] if diverged else final_loss[i]),
                w=float(weights[0]),
                b=float(hist["b"][-1] if diverged else b_final[i]),
                weights=tuple(float(v) for v in weights),
                start_weights=tuple(float(v) for v in arr[0, layout.w, i]),
                history=hist,
                diverged_epoch=n if diverged else None,
                setup_s=timings[0] / runs,
                train_s=timings[1] / runs,
                **_info_fields(info, runs),
            )
        )
    return out


def error_results(specs: Sequence[RunSpec], exc: BaseException, engine: str) -> list[RunResult]:
    """A fault inside a plugin fails every run of its batch, as it would fail each alone."""
    message = one_line(exc)
    return [
        RunResult(s.run_id, ERROR, 0, error=message, engine=engine, batch_size=len(specs))
        for s in specs
    ]


def _info_fields(info: EngineInfo, runs: int) -> dict[str, Any]:
    return {
        "engine": info.engine,
        "implementation": info.implementation,
        "batch_size": runs,
        "compiled": info.compiled,
        "engine_note": info.note,
    }
