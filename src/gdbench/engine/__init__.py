"""Engines advance runs; this module holds what every engine returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

HISTORY_COLUMNS = ("loss", "grad_norm", "w", "b")

OK, DIVERGED, ERROR = "ok", "diverged", "error"


@dataclass
class RunResult:
    """The outcome of one run: status, final state, per-epoch history and timings.

    ``history`` maps each name in HISTORY_COLUMNS to an array with one value per epoch
    that ran; the loss of epoch e is the loss of the forward pass of epoch e (the
    parameters after e - 1 steps), as the notebook prints it. ``final_loss`` is the loss
    at the parameters after the last step.
    """

    run_id: int
    status: str
    epochs_run: int
    final_loss: float = float("nan")
    w: float = float("nan")
    b: float = float("nan")
    history: dict[str, np.ndarray] = field(default_factory=dict)
    error: str = ""
    diverged_epoch: int | None = None
    setup_s: float = 0.0
    train_s: float = 0.0
    engine: str = "sequential"
    implementation: str = ""

    @property
    def epoch_us(self) -> float:
        return 1e6 * self.train_s / self.epochs_run if self.epochs_run else float("nan")


def run_losses(w: torch.Tensor, b: torch.Tensor, x_row, y_row, loss_fn, loss_kw) -> torch.Tensor:
    """Mean loss per run, shape (R,), for weights and biases viewed as (R, 1).

    Both engines compute through this one function — ``b + w·x`` as one ``addcmul``
    over (R, N), the loss per element, the mean over samples only — so a run does the
    same arithmetic whether it runs alone or stacked with others, and the two engines
    agree bit for bit on the CPU. (The notebook's ``nn.Linear`` computes the same
    ``w·x + b`` through a matrix product; the results agree to float32 rounding.)
    """
    import torch

    pred = torch.addcmul(b, w, x_row)
    target = y_row if y_row.shape == pred.shape else y_row.expand_as(pred)
    return loss_fn(pred, target, **loss_kw).mean(dim=1)
