"""The reference engine: the notebook's loop, one run at a time.

``zero_grad → forward → loss → backward → step`` on full-batch data, with the per-epoch
record kept on the device (one small copy per epoch, no host synchronisation) and
checked for NaN/inf every CHECK_EVERY epochs, so the loop costs little more than the
bare notebook loop.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from ..errors import one_line
from ..plan import RunSpec
from . import DIVERGED, ERROR, OK, RunResult, run_losses

CHECK_EVERY = 32
"""Epochs between NaN/inf checks: each check costs a host synchronisation."""

_REC = 5  # loss, dL/dw, dL/db, w, b


def init_params(spec: RunSpec, in_features: int = 1, out_features: int = 1):
    """The run's initial weight and bias, drawn on the CPU from the run's seed.

    Drawing on the CPU makes the start identical on every device and in every engine.
    """
    g = torch.Generator().manual_seed(spec.seed)
    weight = torch.empty(out_features, in_features)
    bias = torch.empty(out_features)
    with torch.no_grad():
        spec.init.component.fn(weight, bias, g, **spec.init.kwargs())
    return weight, bias


class SequentialRun:
    """One run's state: its parameters, optimizer and per-epoch record on the device."""

    def __init__(self, spec: RunSpec, x: torch.Tensor, y: torch.Tensor) -> None:
        weight, bias = init_params(spec)
        self.spec = spec
        self.w = weight.to(device=x.device, dtype=x.dtype).requires_grad_()
        self.b = bias.to(device=x.device, dtype=x.dtype).requires_grad_()
        self.opt = spec.optimizer.component.fn([self.w, self.b], **spec.optimizer.kwargs())
        self.loss_fn, self.loss_kw = spec.loss.component.fn, spec.loss.kwargs()
        self.rec = torch.empty(spec.epochs, _REC, device=x.device, dtype=x.dtype)
        self.x_row, self.y_row = _rows(x, y)
        self._w2, self._b2 = self.w.view(1, 1), self.b.view(1, 1)
        self._row_parts = (self.w.view(1), self.b.view(1))
        self._one = torch.ones(1, device=x.device, dtype=x.dtype)  # d(sum of losses)/d(loss)

    def step(self, epoch: int) -> None:
        """zero_grad → forward → loss → backward → (record) → step, as in the notebook."""
        self.opt.zero_grad()
        loss = run_losses(self._w2, self._b2, self.x_row, self.y_row, self.loss_fn, self.loss_kw)
        loss.backward(self._one)
        with torch.no_grad():
            w, b = self.w, self.b
            torch.cat((loss.view(1), w.grad.view(1), b.grad.view(1), *self._row_parts),
                      out=self.rec[epoch])  # fmt: skip
        self.opt.step()

    def train(self, epoch_hook=None) -> tuple[int, bool]:
        """The hot loop. Returns (epochs run, diverged)."""
        epochs = self.spec.epochs
        for epoch in range(epochs):
            self.step(epoch)
            if epoch_hook is not None:
                epoch_hook(self.spec, epoch + 1, self.rec[epoch])
            if (epoch + 1) % CHECK_EVERY == 0 or epoch + 1 == epochs:
                bad = _first_nonfinite(self.rec[: epoch + 1, 0], start=epoch + 1 - CHECK_EVERY)
                if bad is not None:
                    return bad + 1, True
        return epochs, False

    def final_loss(self) -> float:
        with torch.no_grad():
            loss = run_losses(self._w2, self._b2, self.x_row, self.y_row, self.loss_fn,
                              self.loss_kw)  # fmt: skip
        return float(loss)


def run_one(spec: RunSpec, x: torch.Tensor, y: torch.Tensor, epoch_hook=None) -> RunResult:
    """Train one run; never raises for a fault inside a plugin (status ``error``)."""
    t0 = time.perf_counter()
    try:
        run = SequentialRun(spec, x, y)
        t1 = time.perf_counter()
        epochs_run, diverged = run.train(epoch_hook)
        if x.device.type == "cuda":
            torch.cuda.synchronize(x.device)
        t2 = time.perf_counter()
        final = run.final_loss()
    except Exception as exc:
        return RunResult(spec.run_id, ERROR, 0, error=one_line(exc))
    history = _history(run.rec[:epochs_run])
    if diverged:
        final_loss, wf, bf = (float(history[k][-1]) for k in ("loss", "w", "b"))
    else:
        final_loss, wf, bf = final, float(run.w.detach()[0, 0]), float(run.b.detach()[0])
    return RunResult(
        spec.run_id,
        DIVERGED if diverged else OK,
        epochs_run,
        final_loss=final_loss,
        w=wf,
        b=bf,
        history=history,
        diverged_epoch=epochs_run if diverged else None,
        setup_s=t1 - t0,
        train_s=t2 - t1,
        engine="sequential",
        implementation=implementation_of(run.opt),
    )


def _rows(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The samples as (1, N) rows, broadcast against (R, 1) parameters."""
    return x.reshape(1, -1), y.reshape(1, -1)


def _first_nonfinite(losses: torch.Tensor, start: int) -> int | None:
    start = max(start, 0)
    window = losses[start:]
    bad = (~torch.isfinite(window)).nonzero()
    return None if bad.numel() == 0 else start + int(bad[0, 0])


def _history(rec: torch.Tensor) -> dict[str, np.ndarray]:
    arr = rec.detach().to("cpu", torch.float64).numpy()
    return {
        "loss": arr[:, 0],
        "grad_norm": np.hypot(arr[:, 1], arr[:, 2]),
        "w": arr[:, 3],
        "b": arr[:, 4],
    }


def implementation_of(opt: torch.optim.Optimizer) -> str:
    """Which code path the optimizer took (fused, foreach or the for-loop)."""
    d = opt.defaults
    if d.get("fused"):
        return "fused"
    if d.get("foreach"):
        return "foreach"
    if d.get("foreach") is None and any(p.is_cuda for g in opt.param_groups for p in g["params"]):
        return "foreach (default on cuda)"
    return "for-loop" if "foreach" in d else type(opt).__name__
