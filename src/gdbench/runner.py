"""``gdbench.run``: check the options, plan the sweep, run it batch by batch, keep the
results safe. The CLI is a thin layer over this function, and notebooks call it directly.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .options import SweepOptions
from .results import Results

if TYPE_CHECKING:
    from .engine.base import Engine
    from .engine.schedule import Batch
    from .executors import DaskExecutor, InProcess
    from .lifecycle import Lifecycle
    from .plan import RunSpec
    from .plugins import PluginSet
    from .store import ResultsStore
    from .task import Task

Progress = Callable[[int, int], None]
"""Called with (runs finished, runs planned) after every batch."""


def run(
    plugins: str | Sequence[str] | None = "sgd",
    *,
    epochs: int = 500,
    lr: Sequence[float] | float | None = None,
    seeds: int | Sequence[int] = 1,
    device: str | Sequence[str] = "auto",
    task: Task | None = None,
    out: str | Path | None = "results",
    plot: bool = True,
    report: bool = True,
    engine: str = "auto",
    compile: bool = False,
    max_batch: int | None = None,
    data_seeds: int | Sequence[int] | None = None,
    target: float = 1e-4,
    diverge_factor: float = 1e4,
    threads: int | None = None,
    history: str = "full",
    resume: str | Path | None = None,
    force: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
    plugin_set: PluginSet | None = None,
    progress: Progress | None = None,
    on_plan: Callable[[int], None] | None = None,
    argv: Sequence[str] | None = None,
) -> Results:
    """Run every combination of the selected components and return the result tables.

    ``plugins`` uses the CLI's syntax (``"sgd,adam[lr=0.001,0.01],loss:mse"``); ``lr`` is
    one learning rate or a list, for every optimizer without an inline one; ``seeds`` is
    a count (seeds 0..n-1) or an explicit list; ``device`` is ``"auto"`` or a list such as
    ``"cpu,cuda"``; ``task`` is a ``gdbench.Task`` (the notebook's by default); ``out`` is
    the parent folder of the per-invocation results folder, or None to keep everything in
    memory, and ``report`` writes ``report.html`` into that folder; ``engine`` is
    ``"auto"``, ``"batched"`` or ``"sequential"``; ``max_batch``
    bounds the runs per batch; ``data_seeds`` (a count or a list) runs every configuration
    on several draws of the data (default: ``task.data_seed`` only); ``target`` is the
    relative gap to the optimum a run must reach and keep to count as solved;
    ``diverge_factor`` marks a run diverged when its loss exceeds that factor times its
    starting loss; ``threads`` sets torch's intra-op threads for the sweep (None: one,
    measured fastest for these small kernels); ``history`` keeps every epoch (``"full"``),
    every K-th plus each run's first and last (``"every:K"``) or none (``"none"``);
    ``resume`` is a results folder of the same sweep to complete (only runs not saved
    there are computed, interrupted ones again; ``force`` allows changed plugin
    versions); ``workers`` runs batches in that many one-thread processes of a local Dask
    cluster (None: the usable cores when the sweep is long enough to pay for starting
    them, else in process), ``scheduler`` sends them to an existing Dask scheduler
    (``"tcp://host:port"``; default from ``GDBENCH_SCHEDULER``). ``plugin_set``
    replaces the installed plugins (tests use it); ``progress`` and ``on_plan`` report to
    a front end; ``argv`` is recorded in ``meta.json``. Bad values raise
    ``gdbench.UsageError`` naming the parameter.
    """
    options = SweepOptions.from_arguments(
        plugins, epochs=epochs, lr=lr, seeds=seeds, device=device, task=task, out=out,
        plot=plot, report=report, engine=engine, compile=compile, max_batch=max_batch,
        data_seeds=data_seeds,
        target=target, diverge_factor=diverge_factor, threads=threads, history=history,
        resume=resume, force=force, workers=workers, scheduler=scheduler,
    )  # fmt: skip
    return run_sweep(options, plugin_set, progress=progress, on_plan=on_plan, argv=argv)


def run_sweep(
    options: SweepOptions,
    plugin_set: PluginSet | None = None,
    *,
    progress: Progress | None = None,
    on_plan: Callable[[int], None] | None = None,
    argv: Sequence[str] | None = None,
    notify: Callable[[str], None] | None = None,
) -> Results:
    """Plan and execute the sweep ``options`` describes (see ``run``); ``notify``
    receives one-line notes for the user (the Dask dashboard's address)."""
    from .devices import resolve_devices
    from .engine import make_engines
    from .engine.schedule import make_batches
    from .estimate import LOOK_S, check_fits, estimate
    from .executors import DaskExecutor, choose_executor
    from .lifecycle import Lifecycle, PluginWarning
    from .measure import Measurer
    from .meta import environment, sweep_meta
    from .plan import build_plan
    from .plugins import get_plugins
    from .selection import select
    from .store import ResultsStore, make_out_dir
    from .threads import thread_policy
    from .validate import validate_selection

    if plugin_set is None:
        plugin_set = get_plugins()
        for warning in plugin_set.warnings:  # the CLI prints its own plugin set's
            warnings.warn(warning, PluginWarning, stacklevel=2)
    selection = select(plugin_set.registry, options.plugins, options.lrs)
    devices = resolve_devices(list(options.device))
    validate_selection(selection)
    plan = estimate(selection, options, devices)  # before planning: sizes only
    check_fits(plan, options.resume or options.out)
    if notify and plan.seconds is not None and plan.seconds > LOOK_S:
        notify(plan.describe())
    specs = build_plan(
        selection, options.seeds, devices, options.epochs, options.tasks, options.diverge_factor
    )
    todo = specs
    if options.resume is not None:
        todo = resumable(options.resume, specs, plugin_set, options)
    engines = make_engines(compile=options.compile)
    batches = make_batches(todo, engines, options.engine, _batch_cap(todo, engines, options))
    hooks = Lifecycle(plugin_set, warn=(lambda m: notify(f"warning: {m}")) if notify else None)
    executor = choose_executor(
        batches, engines, options.workers, options.scheduler, options.compile, options.threads,
        needs_this_process=hooks.on_epoch is not None, target=options.target,
        history=None if hooks.implements("gdbench_run_end") else options.history,
    )  # fmt: skip
    try:
        if isinstance(executor, DaskExecutor):
            workers = executor.describe()["workers"]
            cap = _batch_cap(todo, engines, options, workers)
            batches = make_batches(todo, engines, options.engine, cap)
            executor.check_workers(todo)
            if notify and executor.dashboard:
                notify(f"dask dashboard: {executor.dashboard}")
        out_dir = options.resume or (make_out_dir(options.out) if options.out else None)
        if on_plan:
            on_plan(len(todo))
        with thread_policy(options.threads) as policy:
            meta = sweep_meta(options, devices, specs, plugin_set, len(batches), argv)
            meta["machine"]["thread_policy"] = policy
            meta["executor"] = executor.describe()
            if options.resume is not None:
                meta = _resumed_meta(options.resume, meta, len(todo))
            store = ResultsStore(
                out_dir, meta, environment(devices), Measurer(options.target), options.history
            )
            store.write_inputs(options)
            hooks.sweep_start(todo, out_dir)
            results = _execute(batches, executor, store, hooks, progress)
    finally:
        executor.close()
    results.planned = len(specs)
    return _finish(results, hooks, options.plot, options.report)


def _batch_cap(
    todo: Sequence[RunSpec], engines: dict[str, Engine], options: SweepOptions, workers: int = 1
) -> dict[str, int] | int | None:
    """Runs per batch: the user's --max-batch, else per engine small enough that a batch
    takes about BATCH_TARGET_S seconds (so a kill loses little, and a part of the results
    folder holds that much work) and that each of ``workers`` gets work."""
    from .engine.schedule import auto_max_batch
    from .estimate import US_PER_RUN_EPOCH
    from .executors import split_for_workers

    if options.max_batch is not None or not todo:
        return options.max_batch
    groups: dict[Any, int] = {}
    for spec in todo:
        key = engines["batched"].batch_key(spec) if engines["batched"].accepts(spec) else spec
        groups[key] = groups.get(key, 0) + 1
    split = split_for_workers(list(groups.values()), workers)
    caps = {}
    for name in engines:
        per_run_s = todo[0].epochs * US_PER_RUN_EPOCH.get(name, 250.0) * 1e-6
        cap = max(1, int(BATCH_TARGET_S / per_run_s))
        if name == "batched":
            cap = min(cap, auto_max_batch(todo[0]))
        caps[name] = max(1, min(cap, split or cap))
    return caps


BATCH_TARGET_S = 2.0
"""A batch should take seconds, not minutes: a kill loses at most the batch in flight."""


def _execute(
    batches: Sequence[Batch],
    executor: InProcess | DaskExecutor,
    store: ResultsStore,
    hooks: Lifecycle,
    progress: Progress | None,
) -> Results:
    """Run every batch, saving its runs as soon as it finishes; on SIGINT/SIGTERM stop at
    the current epoch; whatever happens, compact what was saved."""
    from .interrupt import StopRequest
    from .meta import now

    n_runs = sum(len(b.specs) for b in batches)
    complete = False
    stop = StopRequest()

    def before(batch: Batch) -> None:
        for spec in batch.specs:
            hooks.run_start(spec)

    try:
        with stop.installed():
            for batch, outcomes, measures, rows in executor.run(
                batches, hooks.on_epoch, stop, before
            ):
                started = batch.specs[: len(outcomes)]  # a stop may leave runs unstarted
                for spec, outcome in zip(started, outcomes, strict=True):
                    hooks.run_end(spec, outcome)
                store.add_batch(started, outcomes, measures, rows)
                store.flush()
                if progress:
                    progress(len(store), n_runs)
            complete = not stop() and len(store) == n_runs
    finally:
        results = store.finish(complete=complete, finished=now(), interrupted=stop.signal)
    results.complete, results.interrupted = complete, stop.signal
    return results


def _finish(results: Results, hooks: Lifecycle, plot: bool, report: bool = True) -> Results:
    from .report import plot_convergence
    from .store import atomic_write

    runs, history, out_dir = results.runs, results.history, results.out_dir
    if out_dir is not None and plot and len(runs):
        atomic_write(out_dir / "convergence.png", lambda p: plot_convergence(runs, history, p))
    if out_dir is not None and len(runs):
        from .profiles import write_profiles

        write_profiles(runs, out_dir, plot=plot)  # when the runs span several workloads
    if out_dir is not None and report:
        from .html_report import write_report_or_warn

        write_report_or_warn(out_dir, results)  # last: it shows the files written above
    hooks.results_ready(runs, history, out_dir)
    return results


def resumable(
    folder: Path, specs: Sequence[RunSpec], plugin_set: PluginSet, options: SweepOptions
) -> list[RunSpec]:
    """The specs of a sweep not yet saved in ``folder`` (interrupted ones again).

    Refuses when the plugins' versions changed since the folder was written, unless
    ``options.force``: the saved runs would then not be the runs this sweep describes.
    """
    import json

    from .errors import UsageError
    from .store import load

    try:
        meta = json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError):
        raise UsageError(f"{str(folder)!r} holds no gdbench results", param="resume") from None
    changed = _changed_plugins(meta.get("plugins", []), plugin_set)
    if changed and not options.force:
        raise UsageError(
            f"{str(folder)!r} was made with other plugin versions ({', '.join(changed)}); "
            "add --force to recompute the runs they affect",
            param="resume",
        )
    saved = load(folder).runs
    done = set(saved.loc[saved["status"] != "interrupted", "run_key"].dropna())
    return [s for s in specs if s.key(options.target) not in done]


def _changed_plugins(recorded: list[dict[str, Any]], plugin_set: PluginSet) -> list[str]:
    now = {p.name: p.version for p in plugin_set.plugins if not p.error and not p.disabled}
    return [
        f"{p['name']} {p.get('version') or '?'} → {now.get(p['name'], 'missing')}"
        for p in recorded
        if not p.get("error") and not p.get("disabled") and now.get(p["name"]) != p.get("version")
    ]


def _resumed_meta(folder: Path, meta: dict[str, Any], n_todo: int) -> dict[str, Any]:
    """The original meta.json, updated: the original invocation stays, resumes are listed."""
    import json

    from .meta import now

    old = json.loads((folder / "meta.json").read_text())
    resumes = [*old.get("resumes", []), {"at": now(), "runs_to_compute": n_todo,
                                         "invocation": meta["invocation"]}]  # fmt: skip
    return {**meta, "invocation": old.get("invocation"), "started": old.get("started"),
            "resumes": resumes}  # fmt: skip
