"""Where batches run: in this process, or as tasks of a ``dask.distributed`` cluster.

A batch and its results are plain picklable values (``Batch``, ``RunResult``), so an
executor only ships them: ``InProcess`` runs them one after the other here; ``DaskExecutor``
submits them to an embedded ``LocalCluster`` (one-thread worker processes) or to an
existing scheduler (``--scheduler tcp://host:port``: ``dask scheduler``/``dask worker``,
dask-jobqueue, any deployment) and yields results as they complete. Dask reruns the
batch of a worker that dies; results are the same wherever a batch runs, because a run
does not depend on what shares its batch.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .errors import UsageError
from .estimate import rough_seconds
from .options import DEFAULT_TARGET, HistoryPolicy

if TYPE_CHECKING:
    import pandas as pd
    import torch

    from .engine.base import Engine, OnEpoch, ShouldStop
    from .engine.records import RunResult
    from .engine.schedule import Batch
    from .measure import Measurer, Measures
    from .plan import RunSpec

SCHEDULER_ENV = "GDBENCH_SCHEDULER"
PARALLEL_MIN_S = 60.0
"""Below this estimated compute time a sweep runs in process: a local cluster costs ~3 s
to start and each worker ~3.5 s to warm up here, and the coordinating process then still
does the storing; measured (docs/performance.md), two workers are no faster at 7 s of
compute and 1.05x faster at 60 s."""
POLL_S = 0.2
"""How often the sweep looks for finished batches and for a stop request."""


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class InProcess:
    """Runs batches here, one after the other; ``on_epoch`` hooks and ``should_stop``
    work at every epoch."""

    name = "in-process"

    def __init__(self, engines: Mapping[str, Engine]) -> None:
        self.engines = engines
        self._data: dict[tuple[Any, str], tuple[torch.Tensor, torch.Tensor]] = {}

    def run(
        self,
        batches: Sequence[Batch],
        on_epoch: OnEpoch | None,
        should_stop: ShouldStop,
        before: Callable[[Batch], None],
    ) -> Iterator[tuple[Batch, list[RunResult], list[Measures] | None, pd.DataFrame | None]]:
        """(batch, results, None, None): the store measures them and builds their history
        rows here."""
        for batch in batches:
            if should_stop():
                return
            before(batch)
            data = batch_data(self._data, batch.specs)
            engine = self.engines[batch.engine]
            outcomes = engine.run(batch.specs, data, on_epoch=on_epoch, should_stop=should_stop)
            yield batch, outcomes, None, None

    def close(self) -> None:
        pass

    def describe(self) -> dict[str, Any]:
        return {"executor": self.name}


class DaskExecutor:
    """Submits every batch to a dask.distributed cluster, yields results as they finish.

    ``address``: an existing scheduler; otherwise a ``LocalCluster`` of ``workers``
    one-thread processes is started (and closed afterwards). A stop request cancels the
    batches not started and tells running ones to stop at their current epoch.
    """

    name = "dask"

    def __init__(
        self,
        address: str | None,
        workers: int,
        compile: bool = False,
        threads: int = 1,
        target: float = DEFAULT_TARGET,
        history: HistoryPolicy | None = None,
    ) -> None:
        from distributed import Client, LocalCluster

        self.compile, self.threads, self.target = compile, threads, target
        self.history = history
        """Workers build the history rows under this policy and send only those (not
        every per-epoch array of every run); None: they send full results (a plugin's
        ``gdbench_run_end`` may read ``result.history``)."""
        self.cluster = None
        if address is None:
            import dask

            # Dask sets MALLOC_TRIM_THRESHOLD_ in its workers, which stops glibc from
            # raising its mmap threshold: every (R, N) tensor of a step is then mmapped
            # and zeroed afresh. Measured: 5x slower batched steps. Keep glibc's default.
            environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
            environ.pop("MALLOC_TRIM_THRESHOLD_", None)
            # The worker's statistical profiler (for the dashboard's Profile tab) samples
            # every thread's stack each 10 ms, holding the GIL: measured 20-30% more CPU
            # in the task thread of a batch whose step is many small torch calls.
            settings = {
                "distributed.nanny.pre-spawn-environ": environ,
                "distributed.worker.profile.enabled": False,
            }
            with (
                dask.config.set(settings),
                _signals_ignored(),  # Ctrl-C reaches the process group: the sweep stops
            ):  # its workers, they do not stop themselves
                self.cluster = LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True,
                    dashboard_address="127.0.0.1:0" if _has_bokeh() else None,
                    silence_logs=logging.ERROR,
                )  # fmt: skip
            self.client = Client(self.cluster)
        else:
            try:
                self.client = Client(address, timeout="10s")
            except OSError as exc:
                raise UsageError(f"cannot reach {address!r}: {exc}", param="scheduler") from None
        self.stop_event = f"gdbench-stop-{uuid.uuid4().hex}"

    @property
    def dashboard(self) -> str | None:
        link = self.client.dashboard_link if _has_bokeh() or self.cluster is None else None
        return str(link) if link else None

    def check_workers(self, specs: Sequence[RunSpec]) -> None:
        """Every worker must have gdbench and the plugin packages of the selected
        components, at the versions used here; else a one-line error naming them."""
        needed = {(c.component.dist, c.component.version) for s in specs for c in s.choices}
        needed |= {("gdbench", _gdbench_version())}
        needed = {(d, v) for d, v in needed if d}
        found = self.client.run(installed_versions)
        for worker, versions in sorted(found.items()):
            missing = [f"{d} {v}" for d, v in sorted(needed) if versions.get(d) != v]
            if missing:
                have = ", ".join(f"{d} {versions[d]}" for d, _ in sorted(needed) if d in versions)
                raise UsageError(
                    f"worker {worker} lacks {', '.join(missing)} (has: {have or 'none'}); "
                    "install them on every worker",
                    param="scheduler",
                )

    def run(
        self,
        batches: Sequence[Batch],
        on_epoch: OnEpoch | None,
        should_stop: ShouldStop,
        before: Callable[[Batch], None],
    ) -> Iterator[tuple[Batch, list[RunResult], list[Measures] | None, pd.DataFrame | None]]:
        """(batch, results, measures, history rows) as batches finish: workers measure
        their runs against the optimum and build their history rows too, so the
        coordinator (which shares the machine with a local cluster) only stores."""
        from distributed import Event, wait

        event = Event(self.stop_event, client=self.client)
        for batch in batches:
            before(batch)
        futures = {
            self.client.submit(run_batch, b, self.compile, self.threads, self.stop_event,
                               self.target, self.history, pure=False,
                               key=f"gdbench-batch-{i}-{uuid.uuid4().hex[:8]}"): b
            for i, b in enumerate(batches)
        }  # fmt: skip
        left = set(futures)
        while left:
            try:
                done, pending = wait(list(left), timeout=POLL_S, return_when="FIRST_COMPLETED")
                left = set(pending)
            except TimeoutError:  # nothing finished within POLL_S: look for a stop request
                done = set()
            if should_stop() and not event.is_set():
                event.set()  # running batches stop at an epoch, queued ones start nothing
            for future in done:
                outcomes, measures, rows = future.result()
                yield futures[future], outcomes, measures, rows

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def describe(self) -> dict[str, Any]:
        info = self.client.scheduler_info()
        return {
            "executor": self.name,
            "scheduler": info.get("address"),
            "workers": len(info.get("workers", {})),
            "embedded": self.cluster is not None,
            "dashboard": self.dashboard,
        }


def choose_executor(
    batches: Sequence[Batch],
    engines: Mapping[str, Engine],
    workers: int | None,
    scheduler: str | None,
    compile: bool,
    threads: int | None,
    needs_this_process: bool,
    target: float = DEFAULT_TARGET,
    history: HistoryPolicy | None = None,
) -> InProcess | DaskExecutor:
    """In process, a local cluster, or the given scheduler (see the module docstring).

    ``workers=None`` decides by estimate: a local cluster of the usable cores only when
    the sweep has several batches and at least PARALLEL_MIN_S seconds of compute.
    ``needs_this_process``: a plugin implements ``gdbench_epoch_end``, which must see
    every epoch here, so batches stay in process.
    """
    scheduler = scheduler or os.environ.get(SCHEDULER_ENV) or None
    if needs_this_process:
        return InProcess(engines)
    if scheduler:
        return DaskExecutor(scheduler, 0, compile, threads or 1, target, history)
    n = workers if workers is not None else usable_cores()
    worth_it = workers is not None or rough_seconds(batches) >= PARALLEL_MIN_S
    if n > 1 and len(batches) > 1 and worth_it:
        return DaskExecutor(None, n, compile, threads or 1, target, history)
    return InProcess(engines)


def split_for_workers(group_sizes: Sequence[int], workers: int) -> int | None:
    """A batch size that gives every worker work — at least two batches per worker, so
    that a worker finishing early finds another — or None when the groups of runs that
    may share a batch are already that many."""
    if workers <= 1 or not group_sizes or len(group_sizes) >= 2 * workers:
        return None
    pieces = math.ceil(2 * workers / len(group_sizes))
    return max(1, math.ceil(max(group_sizes) / pieces))


# ---------------------------------------------------------------- on the workers

_WORKER_DATA: dict[tuple[Any, str], tuple[torch.Tensor, torch.Tensor]] = {}
_WORKER_MEASURERS: dict[float, Measurer] = {}


def run_batch(
    batch: Batch,
    compile: bool,
    threads: int,
    stop_event: str,
    target: float,
    history: HistoryPolicy | None = None,
) -> tuple[list[RunResult], list[Measures], pd.DataFrame | None]:
    """Run one batch on a worker, with ``threads`` intra-op threads, and measure its runs
    against their optimum (cached per worker); it stops at the current epoch once the
    sweep's stop event is set (polled at most every 0.5 s)."""
    import torch

    from .engine import make_engines
    from .measure import Measurer

    should_stop = _RemoteStop(stop_event)
    if should_stop.now():  # the sweep was stopped before this batch started
        return [], [], None
    torch.set_num_threads(threads)
    engine = make_engines(compile=compile)[batch.engine]
    data = batch_data(_WORKER_DATA, batch.specs)
    outcomes = engine.run(batch.specs, data, should_stop=should_stop)
    measurer = _WORKER_MEASURERS.setdefault(target, Measurer(target))
    measures = measurer.measure_batch(batch.specs[: len(outcomes)], outcomes)
    if history is None:
        return outcomes, measures, None
    return _without_arrays(batch, outcomes, measures, history)


def _without_arrays(
    batch: Batch, outcomes: list[RunResult], measures: list[Measures], history: HistoryPolicy
) -> tuple[list[RunResult], list[Measures], pd.DataFrame]:
    """The batch's history rows, thinned by ``history``, instead of every run's
    per-epoch arrays: ~10x less to send for ``every:10``, nothing for ``none``."""
    import dataclasses

    import numpy as np

    from .results import best_loss_of, history_batch

    ids = [s.run_id for s in batch.specs[: len(outcomes)]]
    rows = history.keep(history_batch(ids, outcomes, [m.gap_history for m in measures]))
    slim = [dataclasses.replace(o, history={}, best_loss=best_loss_of(o)) for o in outcomes]
    return slim, [dataclasses.replace(m, gap_history=np.empty(0)) for m in measures], rows


class _RemoteStop:
    """``should_stop`` for a worker: asks the scheduler's event, at most twice a second."""

    def __init__(self, name: str, every_s: float = 0.5) -> None:
        self.name, self.every_s = name, every_s
        self.last, self.stopped = time.monotonic(), False

    def __call__(self) -> bool:
        if not self.stopped and time.monotonic() - self.last >= self.every_s:
            self.now()
        return self.stopped

    def now(self) -> bool:
        """Ask the scheduler at once."""
        from distributed import Event

        self.last = time.monotonic()
        self.stopped = Event(self.name).is_set()
        return self.stopped


def installed_versions() -> dict[str, str]:
    """Distribution name → version of every package installed (runs on each worker)."""
    from importlib import metadata

    return {d.metadata["Name"]: d.version for d in metadata.distributions() if d.metadata["Name"]}


def batch_data(cache: dict[tuple[Any, str], Any], specs: Sequence[RunSpec]) -> Any:
    """The batch's data: its task's samples on its device, or one draw per run stacked
    when its runs are on several data seeds (each draw made once per process)."""
    from .engine.base import stack_data

    for spec in specs:
        key = (spec.task, spec.device)
        if key not in cache:
            cache[key] = spec.task.data(spec.device)
    return stack_data([cache[(s.task, s.device)] for s in specs])


def _gdbench_version() -> str:
    from . import __version__

    return __version__


@contextmanager
def _signals_ignored() -> Iterator[None]:
    """SIGINT and SIGTERM ignored while worker processes are started: they inherit it
    (Python keeps an inherited SIG_IGN), so a Ctrl-C sent to the terminal's process group
    stops the sweep cleanly instead of killing its workers under it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _has_bokeh() -> bool:
    import importlib.util

    return importlib.util.find_spec("bokeh") is not None
