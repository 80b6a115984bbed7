"""The engine contract: an ``Engine`` turns a batch of run specs into results by way of a
``Trainer``, the per-step object that benchmarks time.

A new engine is one ``Engine`` subclass: it says which runs it accepts, which may share a
batch, and how to build a ``Trainer`` (whose ``step`` advances every run of the batch by
one epoch and writes the record). The epoch loop, divergence handling, timing, error
capture and result building are shared, here and in ``records``.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from ..errors import ComponentError, one_line, raise_plugin_errors
from . import records
from .records import Divergence, EngineInfo, RunResult

if TYPE_CHECKING:
    from ..plan import RunSpec
    from ..selection import Choice

Data = tuple[torch.Tensor, torch.Tensor]
"""The samples ``(x, y)`` on the batch's device: x (n, dim) and y (n, 1) when the batch's
runs share one draw of the data; x (R, n, dim) and y (R, n, 1), one draw per run in batch
order, when they do not (runs on several data seeds share a batch; see ``stack_data``)."""

OnEpoch = Callable[["RunSpec", int, dict[str, float]], None]
"""Called after each epoch of each live run with (spec, epoch from 1, metrics)."""

ShouldStop = Callable[[], bool]
"""Asked after every epoch; True stops the batch there, its runs ``interrupted``."""


def run_losses(
    w: torch.Tensor,
    b: torch.Tensor,
    x_rows: torch.Tensor,
    y_row: torch.Tensor,
    loss_fn: Callable[..., torch.Tensor],
    loss_kw: dict[str, Any],
) -> torch.Tensor:
    """Mean loss per run, shape (R,), for weights viewed as (R, dim) and biases as (R, 1);
    ``x_rows`` is the samples' features as rows, (dim, 1, N) shared by every run or
    (dim, R, N) one row per run, and ``y_row`` the targets, (1, N) or (R, N).

    Every engine computes through this one function — ``b + Σⱼ wⱼ·xⱼ`` as one ``addcmul``
    per feature over (R, N), in feature order, the loss per element, the mean over samples
    only — so a run does the same arithmetic whether it runs alone or stacked with others
    (no matrix product whose blocking depends on R), and the engines agree bit for bit on
    the CPU. (The notebook's ``nn.Linear`` computes the same ``w·x + b`` through a matrix
    product; the results agree to float32 rounding.)
    """
    if x_rows.shape[0] == 1:  # one feature: no slicing of w, which autograd would record
        pred = torch.addcmul(b, w, x_rows[0])
    else:
        pred = torch.addcmul(b, w[:, :1], x_rows[0])
        for j in range(1, x_rows.shape[0]):
            pred = torch.addcmul(pred, w[:, j : j + 1], x_rows[j])
    target = y_row if y_row.shape == pred.shape else y_row.expand_as(pred)
    return loss_fn(pred, target, **loss_kw).mean(dim=1)


def sample_rows(data: Data) -> tuple[torch.Tensor, torch.Tensor]:
    """The samples as rows, contiguous: features (dim, 1, N) and targets (1, N) for data
    shared by the batch, (dim, R, N) and (R, N) for one draw per run. Either way each
    run's prediction is the same element-wise ``addcmul``: the arithmetic, and so the
    result, does not depend on whether the data is shared."""
    x, y = data
    if x.dim() == 2:
        return x.T.contiguous().unsqueeze(1), y.reshape(1, -1)
    return x.permute(2, 0, 1).contiguous(), y.reshape(x.shape[0], -1)


def stack_data(per_run: Sequence[Data]) -> Data:
    """One draw of the data per run, stacked in batch order: (R, n, dim) and (R, n, 1);
    the draw itself when every run has the same one."""
    first = per_run[0]
    if all(d is first for d in per_run):
        return first
    return torch.stack([x for x, _ in per_run]), torch.stack([y for _, y in per_run])


def init_params(spec: RunSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """The run's initial weight (1, dim) and bias (1,), drawn on the CPU from the run's
    seed, exactly as for ``nn.Linear(dim, 1)``.

    Drawing on the CPU makes the start identical on every device and in every engine. The
    initializer's contract is enforced here (see ``check_init``); the tensors start as NaN
    so that one which fills nothing is caught rather than training from stale memory.
    """
    g = torch.Generator().manual_seed(spec.seed)
    weight = torch.full((1, spec.task.dim), math.nan)
    bias = torch.full((1,), math.nan)
    storage = (weight.data_ptr(), bias.data_ptr())
    with torch.no_grad():
        try:
            returned = spec.init.component.fn(weight, bias, g, **spec.init.kwargs())
        except Exception as exc:
            raise blame(spec.init, one_line(exc)) from exc
    check_init(spec.init, weight, bias, storage, returned, spec.task.dim)
    return weight, bias


def check_init(
    choice: Choice,
    weight: torch.Tensor,
    bias: torch.Tensor,
    storage: tuple[int, int],
    returned: Any,
    dim: int,
) -> None:
    """An initializer fills ``weight`` (1, dim) and ``bias`` (1,) in place with finite
    values and returns None; anything else would make runs train from something other
    than what it drew (or fail later with an error that does not name it)."""
    shapes = f"fill weight (1, {dim}) and bias (1,) in place"
    if returned is not None:
        raise blame(choice, f"returned {type(returned).__name__} instead of None; {shapes}")
    if (tuple(weight.shape), tuple(bias.shape)) != ((1, dim), (1,)):
        raise blame(choice, f"changed the shapes to weight {tuple(weight.shape)} and bias "
                            f"{tuple(bias.shape)}; {shapes}")  # fmt: skip
    if (weight.data_ptr(), bias.data_ptr()) != storage:
        raise blame(choice, f"replaced the tensors' storage (e.g. weight.data = ...); {shapes}")
    if not (bool(torch.isfinite(weight).all()) and bool(torch.isfinite(bias).all())):
        raise blame(choice, f"left non-finite values (NaN: not filled, or inf); {shapes}")


def blame(choice: Choice, detail: str) -> ComponentError:
    """An error naming ``choice``'s component and plugin, for the run's ``error``."""
    c = choice.component
    return ComponentError(KIND_WORDS.get(c.kind, c.kind), choice.label(), c.plugin, detail)


KIND_WORDS = {"init": "initializer"}


def blame_step(exc: BaseException, spec: RunSpec, optimizer: Any) -> ComponentError:
    """Whose code raised inside a training step: the optimizer's when one of its own
    methods is on the traceback (``step``, ``zero_grad``), else the loss's (forward or
    backward). Costs nothing unless a step raises."""
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_locals.get("self") is optimizer:
            return blame(spec.optimizer, one_line(exc))
        tb = tb.tb_next
    return blame(spec.loss, one_line(exc))


def implementation_of(opt: torch.optim.Optimizer) -> str:
    """Which code path a torch optimizer took: ``fused``, ``foreach`` (asked for, or
    torch's default for CUDA parameters) or ``for-loop``; ``custom`` for an optimizer
    without those options (its own ``step``)."""
    d = opt.defaults
    if "foreach" not in d and "fused" not in d:
        return "custom"
    if d.get("fused"):
        return "fused"
    if d.get("foreach"):
        return "foreach"
    if d.get("foreach") is None and any(p.is_cuda for g in opt.param_groups for p in g["params"]):
        return "foreach"
    return "for-loop"


class Trainer(ABC):
    """R runs on one device, advanced together by ``step``; what benchmarks time.

    Subclasses create ``self.rec`` (see ``records``), implement ``step`` and
    ``final_state``, and may freeze diverged runs in ``on_diverged``/``after_step``.
    """

    specs: list[RunSpec]
    rec: torch.Tensor

    def __init__(self, specs: Sequence[RunSpec], data: Data) -> None:
        x, _ = data
        self.specs = list(specs)
        self.runs = len(self.specs)
        self.epochs = self.specs[0].epochs
        self.device, self.dtype = x.device, x.dtype
        self.dim = self.specs[0].task.dim
        self.layout = records.Layout(self.dim)
        self.rec = torch.empty(
            self.epochs, self.layout.size, self.runs, device=self.device, dtype=self.dtype
        )
        self.divergence = Divergence(self.runs, [s.diverge_factor for s in self.specs])
        self.epochs_run = 0
        self.interrupted = False

    @abstractmethod
    def step(self, epoch: int) -> None:
        """One zero_grad → forward → loss → backward → step for every run, recorded in
        ``self.rec[epoch]``."""

    @abstractmethod
    def final_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(loss (R,), w (R, dim), b (R,)) at the parameters after the last step."""

    @abstractmethod
    def info(self) -> EngineInfo:
        """How this batch ran (engine, optimizer implementation, compilation)."""

    def on_diverged(self) -> None:  # noqa: B027 (optional hook, empty by default)
        """Called when runs have newly diverged (``self.divergence.at``)."""

    def after_step(self) -> None:  # noqa: B027 (optional hook, empty by default)
        """Called after every step (e.g. to keep diverged runs frozen)."""

    def train(self, on_epoch: OnEpoch | None = None, should_stop: ShouldStop | None = None) -> int:
        """The epoch loop; stops early when every run has diverged. Returns epochs run.

        Divergence is checked every CHECK_EVERY epochs (each check synchronises with the
        device), or every epoch when ``on_epoch`` reports live runs (which synchronises
        anyway), so that a run is reported up to the epoch it diverged and never after.
        """
        for epoch in range(self.epochs):
            self.step(epoch)
            self.after_step()
            due = on_epoch is not None or self.divergence.due(epoch, self.epochs)
            if due and self.divergence.check(self.rec, epoch):
                self.on_diverged()
                if self.divergence.all and on_epoch is None:
                    self.epochs_run = epoch + 1
                    return self.epochs_run
            if on_epoch is not None:
                self._report_epoch(on_epoch, epoch)
                if self.divergence.all:
                    self.epochs_run = epoch + 1
                    return self.epochs_run
            if should_stop is not None and epoch + 1 < self.epochs and should_stop():
                self.divergence.check(self.rec, epoch)  # diverged runs stay diverged
                self.interrupted = True
                self.epochs_run = epoch + 1
                return self.epochs_run
        self.epochs_run = self.epochs
        return self.epochs_run

    def _report_epoch(self, on_epoch: OnEpoch, epoch: int) -> None:
        """Report each run that had not diverged before this epoch (a run's diverging
        epoch is in its history, so it is reported too)."""
        rows = self.rec[epoch].T.cpu()
        for i, spec in enumerate(self.specs):
            at = self.divergence.at[i]
            if at == 0 or at > epoch:
                on_epoch(spec, epoch + 1, records.epoch_metrics(rows[i], self.layout))

    def results(self, setup_s: float, train_s: float) -> list[RunResult]:
        return records.results(
            self.specs,
            self.rec,
            self.divergence,
            self.epochs_run,
            self.final_state(),
            (setup_s, train_s),
            self.info(),
            self.interrupted,
        )


class Engine(ABC):
    """Runs batches of specs. Subclasses set ``name`` and implement ``trainer``."""

    name: ClassVar[str]

    def accepts(self, spec: RunSpec) -> bool:
        """Whether this engine can run ``spec`` at all."""
        return True

    def batch_key(self, spec: RunSpec) -> Hashable | None:
        """Runs with equal keys may share a batch; None: the run goes alone."""
        return None

    def refusal(self, spec: RunSpec) -> str:
        """Why ``accepts(spec)`` is False, for the user."""
        return f"the {self.name} engine cannot run it"

    @abstractmethod
    def trainer(self, specs: Sequence[RunSpec], data: Data) -> Trainer:
        """The state of ``specs`` ready to train (initialised, optimizer built)."""

    def run(
        self,
        specs: Sequence[RunSpec],
        data: Data,
        *,
        on_epoch: OnEpoch | None = None,
        should_stop: ShouldStop | None = None,
    ) -> list[RunResult]:
        """Train ``specs`` together; one result per spec, in order. Never raises for a
        fault inside a plugin: the batch's runs get status ``error`` with the message.
        When ``should_stop()`` turns True the batch stops at that epoch and its live runs
        end ``interrupted``, with their history so far."""
        t0 = time.perf_counter()
        try:
            trainer = self.trainer(specs, data)
            t1 = time.perf_counter()
            trainer.train(on_epoch, should_stop)
            _synchronize(trainer.device)
            t2 = time.perf_counter()
            return trainer.results(setup_s=t1 - t0, train_s=t2 - t1)
        except Exception as exc:
            if raise_plugin_errors():
                raise
            return records.error_results(specs, exc, self.name)


def _synchronize(device: torch.device) -> None:
    """Wait for queued kernels, so that timings cover the work (no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
