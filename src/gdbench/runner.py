"""``gdbench.run``: plan a sweep, execute it run by run, and keep the results safe.

The CLI is a thin layer over this function, and notebooks call it directly.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UsageError

DEFAULT_OUT = Path("results")


@dataclass
class Results:
    """What a sweep produced: the two tables, and where they were written (if anywhere)."""

    runs: Any  # pandas.DataFrame, one row per run
    history: Any  # pandas.DataFrame, one row per run per epoch
    out_dir: Path | None
    complete: bool = True

    def summary(self):
        """One row per configuration, as the CLI prints it."""
        from .report import summary

        return summary(self.runs)


def run(
    plugins: str | Sequence[str] | None = "sgd",
    *,
    epochs: int = 500,
    lr: Sequence[float] | float | None = None,
    seeds: int | Sequence[int] = 1,
    device: str | list[str] = "auto",
    task: Any = None,
    out: str | Path | None = DEFAULT_OUT,
    plot: bool = True,
    engine: str = "auto",
    compile: bool = False,
    max_batch: int | None = None,
    plugin_set: Any = None,
    progress: Callable[[int, int], None] | None = None,
    on_plan: Callable[[int], None] | None = None,
    argv: list[str] | None = None,
) -> Results:
    """Run every combination of the selected components and return the result tables.

    ``plugins`` uses the CLI's syntax (``"sgd,adam[lr=0.001,0.01],loss:mse"``); ``seeds``
    is a count (seeds 0..n-1) or an explicit list; ``task`` is a ``gdbench.Task`` (the
    notebook's by default); ``out`` is the parent folder of the per-invocation results
    folder, or None to keep everything in memory.
    """
    from .plugins import get_plugins
    from .selection import check_lr, select
    from .task import Task

    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise UsageError(f"--epochs must be a positive whole number, got {epochs!r}")
    lrs = [lr] if isinstance(lr, (int, float)) else list(lr or [])
    check_lr(lrs, "--lr")
    seed_list = _seeds(seeds)
    task = task or Task()
    plugin_set = plugin_set or get_plugins()
    selection = select(plugin_set.registry, plugins, lrs)

    from .devices import resolve_devices
    from .engine.schedule import make_units
    from .plan import build_plan
    from .validate import validate_selection

    devices = resolve_devices(device)
    validate_selection(selection)
    specs = build_plan(selection, seed_list, devices, epochs, task)
    units = make_units(specs, engine, max_batch)
    out_dir = make_out_dir(out) if out is not None else None
    if on_plan:
        on_plan(len(specs))
    meta = _meta(specs, plugin_set, argv, devices)
    meta.update(engine=engine, compile=compile, batches=sum(u.batched for u in units))
    return _execute(units, len(specs), plugin_set, out_dir, plot, progress, meta, compile)


def _execute(units, n_runs, plugin_set, out_dir, plot, progress, meta, compile) -> Results:
    from .report import plot_convergence
    from .results import ResultsStore, atomic_write

    devices = list(meta["devices"])
    store = ResultsStore(out_dir, meta, _environment(devices))
    hooks = _Lifecycle(plugin_set)
    data: dict[tuple, tuple] = {}
    complete = False
    try:
        for unit in units:
            first = unit.specs[0]
            key = (first.task, first.device)
            if key not in data:
                data[key] = first.task.data(first.device)
            for spec in unit.specs:
                hooks.run_start(spec)
            results = _run_unit(unit, data[key], hooks.epoch_hook, compile)
            for spec, result in zip(unit.specs, results, strict=True):
                hooks.run_end(spec, result)
                store.add(spec, result)
            store.maybe_flush()
            if progress:
                progress(len(store), n_runs)
        complete = True
    finally:
        finished = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
        store.flush(complete=complete, finished=finished)
    runs, history = store.tables()
    if out_dir is not None and plot and len(runs):
        atomic_write(out_dir / "convergence.png", lambda p: plot_convergence(runs, history, p))
    hooks.results_ready(runs, history, out_dir)
    return Results(runs=runs, history=history, out_dir=out_dir, complete=complete)


def _run_unit(unit, data, epoch_hook, compile: bool) -> list:
    """Execute one unit on its engine."""
    if unit.batched:
        from .engine.batched import run_batch

        return run_batch(unit.specs, *data, compile_step=compile, epoch_hook=epoch_hook)
    from .engine.sequential import run_one

    return [run_one(unit.specs[0], *data, epoch_hook=epoch_hook)]


class _Lifecycle:
    """Calls lifecycle hooks only when some plugin implements them (else they cost nothing)."""

    def __init__(self, plugin_set) -> None:
        self.hook = plugin_set.pm.hook
        self._has = {
            name: plugin_set.implemented(name)
            for name in (
                "gdbench_run_start",
                "gdbench_epoch_end",
                "gdbench_run_end",
                "gdbench_results_ready",
            )
        }
        self.epoch_hook = self._epoch_end if self._has["gdbench_epoch_end"] else None

    def run_start(self, spec) -> None:
        if self._has["gdbench_run_start"]:
            self.hook.gdbench_run_start(run=spec)

    def _epoch_end(self, spec, epoch: int, row) -> None:
        loss, gw, gb, w, b = row.tolist()
        metrics = {"loss": loss, "grad_norm": (gw * gw + gb * gb) ** 0.5, "w": w, "b": b}
        self.hook.gdbench_epoch_end(run=spec, epoch=epoch, metrics=metrics)

    def run_end(self, spec, result) -> None:
        if self._has["gdbench_run_end"]:
            self.hook.gdbench_run_end(run=spec, result=result)

    def results_ready(self, runs, history, out_dir) -> None:
        if self._has["gdbench_results_ready"]:
            self.hook.gdbench_results_ready(runs=runs, history=history, out_dir=out_dir)


def _seeds(seeds: int | Sequence[int]) -> list[int]:
    if isinstance(seeds, bool):
        raise UsageError(f"--seeds must be a positive whole number, got {seeds!r}")
    if isinstance(seeds, int):
        if seeds < 1:
            raise UsageError(f"--seeds must be at least 1, got {seeds}")
        return list(range(seeds))
    seed_list = [int(s) for s in seeds]
    if not seed_list:
        raise UsageError("--seeds needs at least one seed")
    return seed_list


def make_out_dir(parent: str | Path) -> Path:
    """A new, writable folder under ``parent``, named by the time of the invocation."""
    parent = Path(parent)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        for n in range(1000):
            out = parent / (stamp if n == 0 else f"{stamp}-{n}")
            try:
                out.mkdir()
                break
            except FileExistsError:
                continue
        probe = out / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UsageError(
            f"--out {str(parent)!r} is not writable ({reason}); choose another folder"
        ) from None
    return out


def _environment(devices: list[str]) -> dict[str, dict[str, Any]]:
    """Per-device columns every row carries: hardware name and software versions."""
    import torch

    from . import __version__
    from .devices import device_name

    common = {"torch_version": torch.__version__, "gdbench_version": __version__}
    return {d: {"device_name": device_name(d), **common} for d in devices}


def _meta(specs, plugin_set, argv, devices) -> dict[str, Any]:
    """What meta.json records: the exact invocation and the environment."""
    import torch

    from . import __version__
    from .devices import device_name

    return {
        "invocation": argv if argv is not None else None,
        "cwd": os.getcwd(),
        "started": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "complete": False,
        "n_runs_planned": len(specs),
        "versions": {
            "gdbench": __version__,
            "torch": torch.__version__,
            "python": sys.version.split()[0],
        },
        "machine": {
            "platform": platform.platform(),
            "hostname": platform.node(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
        },
        "devices": {d: device_name(d) for d in devices},
        "task": specs[0].task.as_dict() if specs else {},
        "plugins": [
            {
                "name": p.name,
                "dist": p.dist,
                "version": p.version,
                "error": p.error,
                "disabled": p.disabled,
            }
            for p in plugin_set.plugins
        ],
    }
