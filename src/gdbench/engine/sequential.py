"""The reference engine: the notebook's loop, one run at a time.

``zero_grad → forward → loss → backward → step`` on full-batch data, with the per-epoch
record kept on the device (one small copy per epoch, no host synchronisation), so the
loop costs little more than the bare notebook loop. It runs any optimizer, elementwise or
not, on parameters shaped as ``nn.Linear(1, 1)``'s.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
import torch

from ..errors import one_line
from ..plan import RunSpec
from .base import (
    Data,
    Engine,
    OnEpoch,
    ShouldStop,
    Trainer,
    blame,
    blame_step,
    implementation_of,
    init_params,
    run_losses,
    sample_rows,
)
from .records import EngineInfo, RunResult


class SequentialTrainer(Trainer):
    """One run's state: its parameters, optimizer and per-epoch record on the device."""

    def __init__(self, specs: Sequence[RunSpec], data: Data) -> None:
        super().__init__(specs, data)
        if self.runs != 1:
            raise ValueError(f"the sequential engine runs one spec at a time, got {self.runs}")
        (spec,) = self.specs
        x, _ = data
        weight, bias = init_params(spec)
        self.w = weight.to(device=x.device, dtype=x.dtype).requires_grad_()
        self.b = bias.to(device=x.device, dtype=x.dtype).requires_grad_()
        try:
            self.opt = spec.optimizer.component.fn([self.w, self.b], **spec.optimizer.kwargs())
        except Exception as exc:
            raise blame(spec.optimizer, one_line(exc)) from exc
        self.loss_fn, self.loss_kw = spec.loss.component.fn, spec.loss.kwargs()
        self.x_row, self.y_row = sample_rows(data)
        self._w2, self._b2 = self.w.view(1, -1), self.b.view(1, 1)
        self._row_parts = (self.w.view(-1), self.b.view(1))
        self._rec_rows = self.rec.view(self.epochs, -1)  # (epochs, layout.size)
        self._one = torch.ones(1, device=x.device, dtype=x.dtype)  # d(sum of losses)/d(loss)

    def step(self, epoch: int) -> None:
        """zero_grad → forward → loss → backward → (record) → step, as in the notebook;
        a fault is attributed to the optimizer or the loss (``blame_step``)."""
        try:
            self._step(epoch)
        except Exception as exc:
            raise blame_step(exc, self.specs[0], self.opt) from exc

    def _step(self, epoch: int) -> None:
        self.opt.zero_grad()
        loss = run_losses(self._w2, self._b2, self.x_row, self.y_row, self.loss_fn, self.loss_kw)
        loss.backward(self._one)
        with torch.no_grad():
            gw, gb = self.w.grad, self.b.grad
            assert gw is not None and gb is not None
            torch.cat((loss.view(1), gw.view(-1), gb.view(1), *self._row_parts),
                      out=self._rec_rows[epoch])  # fmt: skip
        self.opt.step()

    def final_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with torch.no_grad():
            loss = run_losses(self._w2, self._b2, self.x_row, self.y_row, self.loss_fn,
                              self.loss_kw)  # fmt: skip
        return (
            loss.cpu().numpy(),
            self.w.detach().view(1, -1).cpu().numpy(),
            self.b.detach().view(1).cpu().numpy(),
        )

    def info(self) -> EngineInfo:
        return EngineInfo(SequentialEngine.name, implementation_of(self.opt))


class SequentialEngine(Engine):
    """Every run on its own ``nn.Linear``-shaped parameters: the reference semantics.

    A batch of this engine is a list of runs done one after the other (so that a part of
    the results folder holds seconds of work, not one short run); each is trained, timed
    and fails on its own.
    """

    name = "sequential"

    def batch_key(self, spec: RunSpec) -> Hashable:
        return (spec.task, spec.device)

    def trainer(self, specs: Sequence[RunSpec], data: Data) -> SequentialTrainer:
        return SequentialTrainer(specs, data)

    def run(
        self,
        specs: Sequence[RunSpec],
        data: Data,
        *,
        on_epoch: OnEpoch | None = None,
        should_stop: ShouldStop | None = None,
    ) -> list[RunResult]:
        """One result per run that started: after a stop request, the run in progress
        ends ``interrupted`` and the rest of the batch is not started."""
        results: list[RunResult] = []
        for spec in specs:
            if results and should_stop is not None and should_stop():
                break
            one = super().run([spec], data, on_epoch=on_epoch, should_stop=should_stop)
            results.extend(one)
        return results
