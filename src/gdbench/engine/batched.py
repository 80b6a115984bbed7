"""The batched engine: R independent runs stacked in one tensor, advanced by one step.

Runs that share the task, device, optimizer, loss (with its hyper-parameters) and epoch
count are stacked into a weight of shape (R, 1, dim) and a bias of shape (R, 1). The loss is
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

import dataclasses
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import ComponentError, one_line
from ..plan import RunSpec
from ..selection import Choice
from . import records
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

COMPILE_MIN_RUNS = 256
"""Smaller batches are not compiled: measured on CPU, a compiled step is slower than
eager at R = 10, even at R = 100, and 7× faster at R = 1000 (docs/performance.md), while
compiling costs seconds per batch."""


@dataclass
class _Group:
    """The runs of one optimizer parameter group (same hyper-parameters)."""

    index: torch.Tensor  # positions of its runs in the batch
    weight: torch.Tensor  # leaf (R_g, 1, dim)
    bias: torch.Tensor  # leaf (R_g, 1)
    hyper: dict[str, Any]


class BatchedTrainer(Trainer):
    """R runs of one optimizer and loss in stacked parameters, one group per setting."""

    def __init__(
        self,
        specs: Sequence[RunSpec],
        data: Data,
        compile_step: bool = False,
        compile_min_runs: int = COMPILE_MIN_RUNS,
    ) -> None:
        super().__init__(specs, data)
        self.x_row, self.y_row = sample_rows(data)  # rows broadcast against every run
        self.groups = self._make_groups()
        order = torch.cat([g.index for g in self.groups])
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(self.runs)
        self.inverse = inverse.to(self.device)
        self.optimizer = self._make_optimizer()
        self.loss_fn = self.specs[0].loss.component.fn
        self.loss_kw = self.specs[0].loss.kwargs()
        self.ones = torch.ones(self.runs, device=self.device, dtype=self.dtype)
        self.frozen: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self._step: Callable[[int], None] = self._eager_step
        self.compiled, self.note = False, ""
        if compile_step and self.runs >= compile_min_runs:
            self._step, self.compiled = torch.compile(self._eager_step), True
            self._first_compiled = True
        elif compile_step:
            self.note = f"eager: batches under {compile_min_runs} runs gain nothing from compile"

    def _make_groups(self) -> list[_Group]:
        by_hyper: dict[tuple[tuple[str, Any], ...], list[int]] = {}
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
        try:
            return factory(param_groups, **self.groups[0].hyper)
        except Exception as exc:
            raise blame(self.specs[0].optimizer, one_line(exc)) from exc

    def _stacked(self, attr: str) -> torch.Tensor:
        """(R, ...) in batch order, from the per-group tensors."""
        parts = [getattr(g, attr) for g in self.groups]
        return parts[0] if len(parts) == 1 else torch.cat(parts)[self.inverse]

    def step(self, epoch: int) -> None:
        """Every run one epoch on; a fault is attributed to the optimizer or the loss
        (``blame_step``; the batch shares both components)."""
        try:
            if self.compiled and self._first_compiled:
                self._first_compiled_step(epoch)
            else:
                self._step(epoch)
        except Exception as exc:
            raise blame_step(exc, self.specs[0], self.optimizer) from exc

    def _eager_step(self, epoch: int) -> None:
        """One zero_grad → forward → loss → backward → step for every run, recorded."""
        self.optimizer.zero_grad()
        w = self._stacked("weight").view(self.runs, self.dim)
        b = self._stacked("bias").view(self.runs, 1)
        losses = run_losses(w, b, self.x_row, self.y_row, self.loss_fn, self.loss_kw)
        losses.backward(self.ones)  # as losses.sum().backward(), one op fewer
        with torch.no_grad():
            gw = self._grads("weight", self.dim)
            gb = self._grads("bias", 1)
            torch.cat((losses.detach().view(1, -1), gw.T, gb.T, w.detach().T, b.detach().T),
                      out=self.rec[epoch])  # fmt: skip
        self.optimizer.step()

    def _grads(self, attr: str, width: int) -> torch.Tensor:
        """(R, width) gradients in batch order."""
        parts = [getattr(g, attr).grad.view(-1, width) for g in self.groups]
        return parts[0] if len(parts) == 1 else torch.cat(parts)[self.inverse]

    def _first_compiled_step(self, epoch: int) -> None:
        """Compilation happens on the first call; where the platform cannot compile
        (no C++ compiler, unsupported device), fall back to eager and say so."""
        self._first_compiled = False
        try:
            self._step(epoch)
        except Exception as exc:
            self._step, self.compiled = self._eager_step, False
            self.note = f"not compiled: {one_line(exc)[:200]}"
            self._eager_step(epoch)

    def on_diverged(self) -> None:
        """Remember each diverged run's parameters at its divergence, per group."""
        at_all = self.divergence.at
        self.frozen = []
        for g in self.groups:
            idx = g.index.numpy()
            epochs = at_all[idx]
            mask = torch.tensor(epochs > 0, device=self.device)
            at = torch.as_tensor(np.maximum(epochs - 1, 0))
            rows = self.rec[at, :, torch.as_tensor(idx)].cpu()  # (R_g, layout.size)
            w = rows[:, self.layout.w].to(self.device)
            b = rows[:, self.layout.b].to(self.device)
            self.frozen.append((mask, w.reshape(g.weight.shape), b.reshape(g.bias.shape)))

    def after_step(self) -> None:
        if not self.frozen:
            return
        with torch.no_grad():
            for g, (mask, w, b) in zip(self.groups, self.frozen, strict=True):
                g.weight.copy_(torch.where(mask.view(-1, 1, 1), w, g.weight))
                g.bias.copy_(torch.where(mask.view(-1, 1), b, g.bias))

    def final_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with torch.no_grad():
            w = self._stacked("weight").view(self.runs, self.dim)
            b = self._stacked("bias").view(self.runs, 1)
            losses = run_losses(w, b, self.x_row, self.y_row, self.loss_fn, self.loss_kw)
        return (
            losses.cpu().numpy(),
            w.detach().cpu().numpy(),
            b.detach().view(-1).cpu().numpy(),
        )

    def info(self) -> EngineInfo:
        implementation = implementation_of(self.optimizer)
        return EngineInfo(BatchedEngine.name, implementation, self.compiled, self.note)


class BatchedEngine(Engine):
    """Stacks runs of batchable components; ``compile`` adds ``torch.compile`` to the step
    of batches of at least ``compile_min_runs`` runs."""

    name = "batched"

    def __init__(self, compile: bool = False, compile_min_runs: int = COMPILE_MIN_RUNS) -> None:
        self.compile = compile
        self.compile_min_runs = compile_min_runs

    def accepts(self, spec: RunSpec) -> bool:
        """Only components declared elementwise may be stacked."""
        return spec.optimizer.component.batchable and spec.loss.component.batchable

    def refusal(self, spec: RunSpec) -> str:
        return (
            f"{spec.optimizer.name} with {spec.loss.name} is not declared batchable; use "
            "engine 'auto' to run such combinations one at a time"
        )

    def batch_key(self, spec: RunSpec) -> Hashable:
        """Runs with equal keys may share a batch: draws of the data that differ only in
        their seed stack too (each run gets its own rows; see ``stack_data``)."""
        task = dataclasses.replace(spec.task, data_seed=0)
        return (task, spec.device, id(spec.optimizer.component), spec.loss, spec.epochs)

    def trainer(self, specs: Sequence[RunSpec], data: Data) -> BatchedTrainer:
        return BatchedTrainer(specs, data, self.compile, self.compile_min_runs)

    def run(
        self,
        specs: Sequence[RunSpec],
        data: Data,
        *,
        on_epoch: OnEpoch | None = None,
        should_stop: ShouldStop | None = None,
    ) -> list[RunResult]:
        """As ``Engine.run``, but a faulty initializer fails only its own runs: runs of
        several initializers share a batch, and one plugin's broken initializer must not
        fail the others' runs (each initializer is tried once before stacking)."""
        broken = _broken_inits(specs)
        healthy = [s for s in specs if s.init not in broken]
        done = []
        if healthy:
            if broken and data[0].dim() == 3:  # one draw per run: keep the healthy runs' rows
                keep = torch.tensor([i for i, s in enumerate(specs) if s.init not in broken])
                data = (data[0][keep], data[1][keep])
            done = super().run(healthy, data, on_epoch=on_epoch, should_stop=should_stop)
        if not broken:
            return done
        by_id = {r.run_id: r for r in done}
        failed = {s.run_id: records.error_results([s], broken[s.init], self.name)[0]
                  for s in specs if s.init in broken}  # fmt: skip
        return [by_id.get(s.run_id) or failed[s.run_id] for s in specs]


def _broken_inits(specs: Sequence[RunSpec]) -> dict[Choice, ComponentError]:
    """Each distinct initializer of the batch, tried once on its first run's seed."""
    broken = {}
    for choice, spec in {s.init: s for s in reversed(specs)}.items():
        try:
            init_params(spec)
        except ComponentError as exc:
            broken[choice] = exc
    return broken
