"""The batched engine: R independent runs stacked in one tensor, advanced by one step.

Runs that share the task, device, optimizer, loss (with its hyper-parameters) and epoch
count are stacked into a weight of shape (R, 1, 1) and a bias of shape (R, 1). The loss is
reduced over samples only, giving one loss per run; backpropagating their sum gives each
run exactly its own gradient (no term mixes runs). Runs whose optimizer hyper-parameters
differ (learning rates, betas, ...) go into separate parameter groups of the same
optimizer, one leaf tensor pair per group, concatenated for the forward pass. This is
exactly R independent runs only for optimizers whose update is elementwise, which is why
the engine takes only components registered with ``batchable=True``.

Each run's initial parameters are drawn exactly as the sequential engine draws them
(``init_params``: its own seed, its own (1, 1) shape for fan-based initializers), so a
batched run starts where the sequential run would.

A run whose loss becomes NaN/inf is marked ``diverged`` at that epoch and frozen: its
parameters are restored after every later step, so it takes no further updates, and no
operation reduces across runs, so it cannot touch the others.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import one_line
from ..plan import RunSpec
from . import DIVERGED, ERROR, OK, RunResult, run_losses
from .sequential import CHECK_EVERY, implementation_of, init_params

_REC = 5  # loss, dL/dw, dL/db, w, b — one row per epoch, one column per run

COMPILE_MIN_RUNS = 256
"""Smaller batches are not compiled: measured on CPU, a compiled step is slower than
eager at R = 10, even at R = 100, and 7× faster at R = 1000 (docs/performance.md), while
compiling costs seconds per batch."""


def batch_key(spec: RunSpec) -> tuple:
    """Runs with equal keys may share a batch."""
    return (spec.task, spec.device, id(spec.optimizer.component), spec.loss, spec.epochs)


def can_batch(spec: RunSpec) -> bool:
    """Only components declared elementwise may be stacked."""
    return spec.optimizer.component.batchable and spec.loss.component.batchable


@dataclass
class _Group:
    """The runs of one optimizer parameter group (same hyper-parameters)."""

    index: torch.Tensor  # positions of its runs in the batch
    weight: torch.Tensor  # leaf (R_g, 1, 1)
    bias: torch.Tensor  # leaf (R_g, 1)
    hyper: dict


def run_batch(
    specs: Sequence[RunSpec],
    x: torch.Tensor,
    y: torch.Tensor,
    compile_step: bool = False,
    epoch_hook=None,
) -> list[RunResult]:
    """Train all ``specs`` together; returns one result per spec, in order.

    A fault inside a plugin fails the whole batch (status ``error`` for each run), as it
    would have failed each run on its own.
    """
    t0 = time.perf_counter()
    try:
        trainer = _BatchTrainer(specs, x, y, compile_step)
        t1 = time.perf_counter()
        trainer.train(epoch_hook)
        t2 = time.perf_counter()
    except Exception as exc:
        return [RunResult(s.run_id, ERROR, 0, error=one_line(exc), engine="batched") for s in specs]
    return trainer.results(setup_s=t1 - t0, train_s=t2 - t1)


class _BatchTrainer:
    def __init__(
        self, specs: Sequence[RunSpec], x, y, compile_step: bool, compile_min_runs: int = 0
    ) -> None:
        self.specs = list(specs)
        self.R = len(specs)
        self.epochs = specs[0].epochs
        self.device, self.dtype = x.device, x.dtype
        self.x_row = x.reshape(1, -1)  # (1, N): one row broadcast against every run
        self.y_row = y.reshape(1, -1)
        self.groups = self._make_groups()
        order = torch.cat([g.index for g in self.groups])
        self.inverse = torch.empty_like(order)
        self.inverse[order] = torch.arange(self.R)
        self.inverse = self.inverse.to(self.device)
        self.optimizer = self._make_optimizer()
        self.loss_fn = specs[0].loss.component.fn
        self.loss_kw = specs[0].loss.kwargs()
        self.rec = torch.empty(self.epochs, _REC, self.R, device=self.device, dtype=self.dtype)
        self.ones = torch.ones(self.R, device=self.device, dtype=self.dtype)
        self.diverged_at = np.zeros(self.R, dtype=np.int64)  # 0: not diverged
        self.frozen: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] | None = None
        self.epochs_run = self.epochs
        self.step, self.compile_note = self._step, ""
        threshold = compile_min_runs or COMPILE_MIN_RUNS
        if compile_step and threshold <= self.R:  # (ruff takes R for a constant)
            self.step, self.compile_note = torch.compile(self._step), "compiled"
        elif compile_step:
            self.compile_note = (
                f"eager: batches under {COMPILE_MIN_RUNS} runs gain nothing from compile"
            )

    def _make_groups(self) -> list[_Group]:
        by_hyper: dict[tuple, list[int]] = {}
        for i, spec in enumerate(self.specs):
            by_hyper.setdefault(spec.optimizer.params, []).append(i)
        groups = []
        for params, idx in by_hyper.items():
            inits = [init_params(self.specs[i]) for i in idx]
            weight = torch.stack([w for w, _ in inits]).to(self.device, self.dtype)
            bias = torch.stack([b for _, b in inits]).to(self.device, self.dtype)
            groups.append(
                _Group(
                    index=torch.tensor(idx),
                    weight=weight.requires_grad_(),
                    bias=bias.requires_grad_(),
                    hyper=dict(params),
                )
            )
        return groups

    def _make_optimizer(self) -> torch.optim.Optimizer:
        factory = self.specs[0].optimizer.component.fn
        param_groups = [{"params": [g.weight, g.bias], **g.hyper} for g in self.groups]
        return factory(param_groups, **self.groups[0].hyper)

    def _stacked(self, attr: str) -> torch.Tensor:
        """(R, ...) in batch order, from the per-group tensors."""
        parts = [getattr(g, attr) for g in self.groups]
        stacked = parts[0] if len(parts) == 1 else torch.cat(parts)
        return stacked if len(parts) == 1 else stacked[self.inverse]

    def _step(self, epoch: int) -> None:
        """One zero_grad → forward → loss → backward → step for every run, recorded."""
        self.optimizer.zero_grad()
        w = self._stacked("weight").view(self.R, 1)
        b = self._stacked("bias").view(self.R, 1)
        losses = run_losses(w, b, self.x_row, self.y_row, self.loss_fn, self.loss_kw)
        losses.backward(self.ones)  # as losses.sum().backward(), one op fewer
        with torch.no_grad():
            gw = self._grads("weight")
            gb = self._grads("bias")
            torch.stack((losses.detach(), gw, gb, w.detach().view(-1), b.detach().view(-1)),
                        out=self.rec[epoch])  # fmt: skip
        self.optimizer.step()

    def _grads(self, attr: str) -> torch.Tensor:
        parts = [getattr(g, attr).grad.view(-1) for g in self.groups]
        return parts[0] if len(parts) == 1 else torch.cat(parts)[self.inverse]

    def train(self, epoch_hook) -> None:
        for epoch in range(self.epochs):
            if epoch == 0 and self.step is not self._step:
                self._first_compiled_step()
            else:
                self.step(epoch)
            if self.frozen is not None:
                self._restore_frozen()
            if epoch_hook is not None:
                self._call_epoch_hook(epoch_hook, epoch)
            due = (epoch + 1) % CHECK_EVERY == 0 or epoch + 1 == self.epochs
            if due and self._check(epoch) and (self.diverged_at > 0).all():
                self.epochs_run = epoch + 1  # every run has diverged: nothing left to do
                return

    def _first_compiled_step(self) -> None:
        """Compilation happens on the first call; where the platform cannot compile
        (no C++ compiler, unsupported device), fall back to eager and say so."""
        try:
            self.step(0)
        except Exception as exc:
            self.step = self._step
            self.compile_note = f"not compiled: {one_line(exc)[:200]}"
            self._step(0)

    def _check(self, epoch: int) -> bool:
        """Mark runs whose loss went non-finite since the last check; True if any did."""
        start = max(0, epoch + 1 - CHECK_EVERY)
        bad = ~torch.isfinite(self.rec[start : epoch + 1, 0, :])  # (window, R)
        if not bool(bad.any()):
            return False
        first = bad.int().argmax(dim=0).cpu().numpy()
        any_bad = bad.any(dim=0).cpu().numpy()
        new = any_bad & (self.diverged_at == 0)
        self.diverged_at[new] = start + first[new] + 1
        if new.any():
            self._freeze()
        return bool(new.any())

    def _freeze(self) -> None:
        """Remember each diverged run's parameters at its divergence, per group."""
        self.frozen = []
        for g in self.groups:
            idx = g.index.numpy()
            epochs = self.diverged_at[idx]
            mask = torch.tensor(epochs > 0, device=self.device)
            at = np.maximum(epochs - 1, 0)
            w = torch.as_tensor(self.rec[at, 3, idx].cpu().numpy()).to(self.device)
            b = torch.as_tensor(self.rec[at, 4, idx].cpu().numpy()).to(self.device)
            self.frozen.append((mask, w.view_as(g.weight), b.view_as(g.bias)))

    def _restore_frozen(self) -> None:
        with torch.no_grad():
            for g, (mask, w, b) in zip(self.groups, self.frozen, strict=True):
                g.weight.copy_(torch.where(mask.view(-1, 1, 1), w, g.weight))
                g.bias.copy_(torch.where(mask.view(-1, 1), b, g.bias))

    def _call_epoch_hook(self, epoch_hook, epoch: int) -> None:
        rows = self.rec[epoch].T.cpu()
        for i, spec in enumerate(self.specs):
            if self.diverged_at[i] == 0 or self.diverged_at[i] > epoch:
                epoch_hook(spec, epoch + 1, rows[i])

    def results(self, setup_s: float, train_s: float) -> list[RunResult]:
        rec = self.rec[: self.epochs_run].to("cpu", torch.float64).numpy()
        final = self._final_losses()
        w_final = self._stacked("weight").detach().view(-1).cpu().numpy()
        b_final = self._stacked("bias").detach().view(-1).cpu().numpy()
        impl = f"{implementation_of(self.optimizer)}, batch of {self.R}"
        if self.compile_note:
            impl += f", {self.compile_note}"
        out = []
        for i, spec in enumerate(self.specs):
            n = int(self.diverged_at[i]) or self.epochs_run
            hist = _history(rec[:n, :, i])
            diverged = self.diverged_at[i] > 0
            out.append(
                RunResult(
                    spec.run_id,
                    DIVERGED if diverged else OK,
                    n,
                    final_loss=float(hist["loss"][-1] if diverged else final[i]),
                    w=float(hist["w"][-1] if diverged else w_final[i]),
                    b=float(hist["b"][-1] if diverged else b_final[i]),
                    history=hist,
                    diverged_epoch=n if diverged else None,
                    setup_s=setup_s / self.R,
                    train_s=train_s / self.R,
                    engine="batched",
                    implementation=impl,
                )
            )
        return out

    def _final_losses(self) -> np.ndarray:
        with torch.no_grad():
            w = self._stacked("weight").view(self.R, 1)
            b = self._stacked("bias").view(self.R, 1)
            losses = run_losses(w, b, self.x_row, self.y_row, self.loss_fn, self.loss_kw)
        return losses.cpu().numpy()


def _history(rec: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "loss": rec[:, 0].copy(),
        "grad_norm": np.hypot(rec[:, 1], rec[:, 2]),
        "w": rec[:, 3].copy(),
        "b": rec[:, 4].copy(),
    }
