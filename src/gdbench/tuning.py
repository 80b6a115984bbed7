"""``gdbench tune``: tuning studies, so that a comparison measures optimizers rather than
one shared learning rate.

A study draws trial points from each optimizer's search space (``search_space``), runs
every trial on the tuning data seeds (one sweep per study: the batched engine stacks a
study's trials of one optimizer as parameter groups of one batch), picks per optimizer ×
loss × initializer × device the best trial — fewest epochs (or seconds) to target, the
final gap breaking ties — and re-runs it on held-out data seeds. Studies repeat the whole
procedure independently: their own quasi-random points (scramble seed = study) and their
own initial parameters (run seeds shifted by the study), the held-out runs sharing the
run seeds given. Presets reproduce DeepOBS's protocol and AlgoPerf's external-tuning
ruleset at this scale.

The results folder holds every trial and every held-out run in ``runs.parquet``
(``phase`` ``tune`` / ``eval``, ``study``, ``trial``), their history, ``tuned.parquet``
(one row per study × optimizer × loss × initializer × device: the chosen hyper-parameters
and the held-out statistics), ``trials.parquet`` (one row per trial and workload: what
the choice was made from) and, with plots, ``sensitivity.png`` and ``convergence.png``
(the held-out runs).
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from .errors import UsageError
from .options import DEFAULT_DIVERGE_FACTOR, DEFAULT_TARGET, SweepOptions, _seeds
from .search_space import SEARCHES, Range, Space, parse_lr_range, parse_spaces
from .sensitivity import plot_sensitivity
from .tuned import (
    choose,
    eval_groups,
    render_tuned,
    trial_table,
    tuned_summary,
    tuned_table,
)

if TYPE_CHECKING:
    from .plugins import PluginSet
    from .results import Results
    from .selection import Choice
    from .task import Task

PRESETS: dict[str, dict[str, Any]] = {
    "deepobs": {"search": "grid", "trials": 36, "studies": 1, "lr_range": "1e-5:1e2",
                "eval_data_seeds": 10},
    "algoperf": {"search": "quasirandom", "trials": 5, "studies": 3, "lr_range": "1e-4:10",
                 "eval_data_seeds": 10},
}  # fmt: skip
"""DeepOBS: lr on a 36-point log grid over 1e-5…1e2, the best re-run on 10 seeds (here:
held-out data seeds). AlgoPerf external tuning: 5 quasi-random trials per study, 3 studies,
scored by the median over studies of the best trial's time to target."""
DEFAULTS: dict[str, Any] = {"search": "grid", "trials": 16, "studies": 1, "lr_range": "1e-4:10",
                            "eval_data_seeds": 10, "criterion": "epochs"}  # fmt: skip
CRITERIA = ("epochs", "seconds", "gap")
"""What a study minimises: median epochs or seconds to target over a trial's runs (runs
that never reach it count as infinite), or the median final gap; ties go to the smaller
median final gap, then to the earlier trial."""

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class TuneOptions:
    """A tuning study's options, checked: the sweep options shared with ``run`` and what
    is particular to tuning."""

    sweep: SweepOptions
    """Plugins, epochs, run seeds, devices, task, engine, target, …"""
    lr_range: Range
    search: str
    trials: int
    """Trial budget per optimizer and study."""
    studies: int
    tune_data_seeds: tuple[int, ...]
    eval_data_seeds: tuple[int, ...]
    criterion: str
    preset: str | None = None

    def study_seeds(self, study: int) -> tuple[int, ...]:
        """Run seeds of a study's trials: the given ones, shifted past them per study."""
        shift = study * (max(self.sweep.seeds) + 1)
        return tuple(s + shift for s in self.sweep.seeds)

    def describe(self) -> str:
        """One line: what was tuned how, on what, held out on what."""
        kind = {"grid": "grid", "quasirandom": "quasi-random", "random": "random"}
        scale = {"log": "log scale", "lin": "linear"}[self.lr_range.scale]
        studies = f" × {self.studies} studies" if self.studies > 1 else ""
        preset = f"{self.preset} preset: " if self.preset else ""
        by = {"epochs": "epochs to target", "seconds": "seconds to target", "gap": "final gap"}
        return (
            f"{preset}lr tuned over {self.lr_range.low:g}…{self.lr_range.high:g} ({scale}), "
            f"{self.trials} {kind[self.search]} trials{studies}, by {by[self.criterion]}; "
            f"tuned on data seed{_plural(self.tune_data_seeds)} "
            f"{seed_list(self.tune_data_seeds)}, held out: {seed_list(self.eval_data_seeds)}"
        )

    @classmethod
    def from_arguments(
        cls,
        plugins: Any = "sgd",
        *,
        preset: Any = None,
        lr_range: Any = None,
        search: Any = None,
        trials: Any = None,
        studies: Any = None,
        tune_data_seeds: Any = None,
        eval_data_seeds: Any = None,
        criterion: Any = None,
        **sweep: Any,
    ) -> TuneOptions:
        """Check ``gdbench.tune``'s arguments; None takes the preset's value, else the
        default (``DEFAULTS``)."""
        if preset is not None and preset not in PRESETS:
            raise UsageError(f"{preset!r} is unknown; use {' or '.join(PRESETS)}", param="preset")
        given = {"lr_range": lr_range, "search": search, "trials": trials, "studies": studies,
                 "eval_data_seeds": eval_data_seeds, "criterion": criterion}  # fmt: skip
        chosen = {**DEFAULTS, **PRESETS.get(preset or "", {})}
        chosen.update({k: v for k, v in given.items() if v is not None})
        options = SweepOptions.from_arguments(plugins, **sweep)
        if chosen["search"] not in SEARCHES:
            raise UsageError(f"{chosen['search']!r} is unknown; use {', '.join(SEARCHES)}",
                             param="search")  # fmt: skip
        if chosen["criterion"] not in CRITERIA:
            raise UsageError(f"{chosen['criterion']!r} is unknown; use {', '.join(CRITERIA)}",
                             param="criterion")  # fmt: skip
        tune_seeds = (
            (options.task.data_seed,)
            if tune_data_seeds is None
            else _seeds(tune_data_seeds, "tune_data_seeds")
        )
        held_out = chosen["eval_data_seeds"]
        if isinstance(held_out, numbers.Integral) and not isinstance(held_out, bool):
            count = _count("eval_data_seeds", held_out)  # the seeds after the tuning ones
            held_out = list(range(max(tune_seeds) + 1, max(tune_seeds) + 1 + count))
        eval_seeds = _seeds(held_out, "eval_data_seeds")
        both = sorted(set(tune_seeds) & set(eval_seeds))
        if both:
            raise UsageError(f"must be held out, but data seed{_plural(both)} "
                             f"{seed_list(both)} {'are' if len(both) > 1 else 'is'} also "
                             "tuned on", param="eval_data_seeds")  # fmt: skip
        return cls(
            sweep=replace(options, task=replace(options.task, data_seed=0), lrs=()),
            lr_range=parse_lr_range(chosen["lr_range"]),
            search=chosen["search"],
            trials=_count("trials", chosen["trials"]),
            studies=_count("studies", chosen["studies"]),
            tune_data_seeds=tune_seeds,
            eval_data_seeds=eval_seeds,
            criterion=chosen["criterion"],
            preset=preset,
        )


def _count(name: str, value: Any) -> int:
    from .checks import whole_number

    number = whole_number(name, value)
    if number < 1:
        raise UsageError(f"must be at least 1, got {number}", param=name)
    return number


def _plural(seeds: Sequence[int]) -> str:
    return "s" if len(seeds) > 1 else ""


def seed_list(seeds: Sequence[int]) -> str:
    """``0``, ``1–10``, ``0, 3, 7``: consecutive runs as ranges."""
    seeds = sorted(seeds)
    parts, start = [], 0
    for i in range(1, len(seeds) + 1):
        if i == len(seeds) or seeds[i] != seeds[i - 1] + 1:
            lo, hi = seeds[start], seeds[i - 1]
            parts.append(str(lo) if lo == hi else f"{lo}–{hi}" if hi > lo + 1 else f"{lo}, {hi}")
            start = i
    return ", ".join(parts)


def parse_seed_spec(text: str, param: str) -> int | list[int]:
    """The command line's seeds: ``N`` is a count, ``A-B`` (inclusive) and ``A,B,C``
    (ranges allowed) name seeds."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    seeds: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        lo, dash, hi = part.partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()):
            raise UsageError(f"cannot read {text!r}; write a count N, a range A-B or a list "
                             "A,B,C", param=param)  # fmt: skip
        seeds.extend(range(int(lo), int(hi) + 1) if dash else [int(lo)])
    if not seeds:
        raise UsageError("needs at least one seed", param=param)
    return seeds


@dataclass
class TuneResults:
    """What ``gdbench.tune`` produced."""

    runs: pd.DataFrame
    """Every trial run and every held-out run (``phase``, ``study``, ``trial`` tell them
    apart); the runs table's columns."""
    history: pd.DataFrame
    tuned: pd.DataFrame
    """One row per study × optimizer × loss × initializer × device (``tuned.parquet``)."""
    trials: pd.DataFrame
    """One row per study × optimizer × trial × loss × initializer × device: the trial's
    hyper-parameters and its statistics on the tuning data (``trials.parquet``)."""
    options: TuneOptions
    out_dir: Path | None
    complete: bool = True
    interrupted: str | None = None
    planned: int = 0

    def summary(self) -> pd.DataFrame:
        """One row per optimizer × loss × initializer × device, over studies: the chosen
        hyper-parameters, held-out runs pooled (solved, median gap, epochs and seconds to
        target with 95% intervals) and the spread of the per-study medians."""
        return tuned_summary(self.tuned, self.runs)


def tune(
    plugins: str | Sequence[str] | None = "sgd",
    *,
    preset: str | None = None,
    lr_range: str | Sequence[float] | None = None,
    search: str | None = None,
    trials: int | None = None,
    studies: int | None = None,
    tune_data_seeds: int | Sequence[int] | None = None,
    eval_data_seeds: int | Sequence[int] | None = None,
    criterion: str | None = None,
    epochs: int = 500,
    seeds: int | Sequence[int] = 1,
    device: str | Sequence[str] = "auto",
    task: Task | None = None,
    out: str | Path | None = "results",
    plot: bool = True,
    report: bool = True,
    engine: str = "auto",
    compile: bool = False,
    max_batch: int | None = None,
    target: float = DEFAULT_TARGET,
    diverge_factor: float = DEFAULT_DIVERGE_FACTOR,
    threads: int | None = None,
    history: str = "full",
    workers: int | None = None,
    scheduler: str | None = None,
    plugin_set: PluginSet | None = None,
    progress: Progress | None = None,
    argv: Sequence[str] | None = None,
) -> TuneResults:
    """Tune each optimizer's hyper-parameters, then compare the tuned optimizers on
    held-out data.

    ``plugins`` uses ``run``'s grammar; an optimizer's hyper-parameter given as
    ``log:LO:HI`` or ``lin:LO:HI`` is tuned over that range, one given several values over
    that set, and ``lr`` over ``lr_range`` (``"1e-4:10"``, log scale; ``"lin:LO:HI"``;
    or a pair) unless given. ``search`` is ``"grid"``, ``"quasirandom"`` (scrambled
    Halton) or ``"random"``; ``trials`` the budget per optimizer and study; ``studies``
    independent repetitions; ``tune_data_seeds`` (count or list; default the task's data
    seed) the data the choice is made on; ``eval_data_seeds`` (a count of the seeds
    after the tuning ones, or a list) the held-out data; ``criterion`` ``"epochs"``,
    ``"seconds"`` (to target) or ``"gap"``. ``preset`` (``"deepobs"``, ``"algoperf"``)
    fills what is not given. The other arguments are ``gdbench.run``'s.
    """
    options = TuneOptions.from_arguments(
        plugins, preset=preset, lr_range=lr_range, search=search, trials=trials,
        studies=studies, tune_data_seeds=tune_data_seeds, eval_data_seeds=eval_data_seeds,
        criterion=criterion, epochs=epochs, seeds=seeds, device=device, task=task, out=out,
        plot=plot, report=report, engine=engine, compile=compile, max_batch=max_batch,
        target=target, diverge_factor=diverge_factor, threads=threads, history=history,
        workers=workers, scheduler=scheduler,
    )  # fmt: skip
    return run_tune(options, plugin_set, progress=progress, argv=argv)


def run_tune(
    options: TuneOptions,
    plugin_set: PluginSet | None = None,
    *,
    progress: Progress | None = None,
    argv: Sequence[str] | None = None,
    notify: Callable[[str], None] | None = None,
) -> TuneResults:
    """Run the studies ``options`` describe (see ``tune``)."""
    from .devices import resolve_devices
    from .plugins import get_plugins
    from .runner import run_sweep
    from .selection import select
    from .store import make_out_dir

    plugin_set = plugin_set or get_plugins()
    registry = plugin_set.registry
    spaces, others = parse_spaces(registry, options.sweep.plugins, options.lr_range)
    points = [
        [space.trials(options.trials, options.search, seed=study) for space in spaces]
        for study in range(options.studies)
    ]
    devices = resolve_devices(list(options.sweep.device))
    base = replace(options.sweep, device=tuple(devices), out=None, plot=False, resume=None)
    workload = select(registry, ",".join([spaces[0].item(points[0][0][0]), *others]))
    n_workloads = len(workload.losses) * len(workload.inits) * len(devices)
    out_dir = make_out_dir(options.sweep.out) if options.sweep.out is not None else None
    n_seeds = len(options.sweep.seeds)
    n_tune = sum(len(p) for study in points for p in study) * n_workloads * n_seeds
    n_tune *= len(options.tune_data_seeds)
    n_eval = options.studies * len(spaces) * n_workloads * n_seeds * len(options.eval_data_seeds)
    planned = n_tune + n_eval
    done = 0

    parts: list[Results] = []

    def sweep(opts: SweepOptions, phase: str, study: int) -> str | None:
        """Run one inner sweep, keep its runs tagged; the signal that stopped it, if any."""
        nonlocal done
        offset = done
        tick = (lambda d, _t: progress(offset + d, planned)) if progress else None
        results = run_sweep(opts, plugin_set, progress=tick, notify=notify)
        done = offset + len(results.runs)
        parts.append(_tag(results, registry, spaces, points[study], phase, study))
        return results.interrupted

    interrupted: str | None = None
    started = _now()
    for study in range(options.studies):
        items = [s.item(p) for s, pts in zip(spaces, points[study], strict=True) for p in pts]
        opts = replace(base, plugins=",".join([*items, *others]),
                       seeds=options.study_seeds(study),
                       data_seeds=options.tune_data_seeds)  # fmt: skip
        interrupted = sweep(opts, "tune", study)
        if interrupted:
            break
    trials = trial_table(pd.concat([r.runs for r in parts], ignore_index=True))
    if len(trials):
        trials.insert(2, "entry_label", [spaces[int(e)].label for e in trials["entry"]])
    chosen = choose(trials, options.criterion)
    if interrupted is None:
        for study in range(options.studies):
            for (loss, init, device), group in eval_groups(chosen[chosen["study"] == study]):
                items = [
                    spaces[e].item(points[study][e][t])
                    for e, t in zip(group["entry"], group["trial"], strict=True)
                ]
                items += [_item("loss", workload.losses, loss), _item("init", workload.inits, init)]
                opts = replace(base, plugins=",".join(items), device=(device,),
                               data_seeds=options.eval_data_seeds)  # fmt: skip
                interrupted = sweep(opts, "eval", study)
                if interrupted:
                    break
            if interrupted:
                break
    runs, history = _combine(parts)
    tuned = tuned_table(chosen, trials, runs, spaces)
    runs = runs.drop(columns="entry")
    complete = interrupted is None and len(runs) == planned
    trials = trials.drop(columns=["_loss", "_init"], errors="ignore")
    result = TuneResults(runs, history, tuned, trials, options, out_dir, complete, interrupted,
                         planned)  # fmt: skip
    if out_dir is not None:
        write_folder(result, out_dir, plugin_set, devices, argv, started)
    return result


def _now() -> str:
    from .meta import now

    return now()


def _choice_key(kind: str, choice: Choice) -> tuple[Any, ...]:
    from .results import _choice_columns

    cols = _choice_columns(kind, choice)
    key = (cols[f"{kind}_plugin"], cols[kind], cols[f"{kind}_params"])
    return (*key, float(choice.kwargs()["lr"])) if kind == "optimizer" else key


def _tag(
    results: Results,
    registry: Any,
    spaces: list[Space],
    points: list[list[dict[str, Any]]],
    phase: str,
    study: int,
) -> Results:
    """The runs of one sweep with their phase and study, and the (entry, trial) each
    belongs to."""
    from .selection import select

    trial_of: dict[tuple[Any, ...], tuple[int, int]] = {}
    for space, pts in zip(spaces, points, strict=True):
        for t, params in enumerate(pts):
            choice = select(registry, space.item(params)).optimizers[0]
            trial_of.setdefault(_choice_key("optimizer", choice), (space.index, t))
    runs = results.runs.copy()
    columns = (runs["optimizer_plugin"], runs["optimizer"], runs["optimizer_params"], runs["lr"])
    found = [trial_of[(p, o, params, float(lr))] for p, o, params, lr in zip(*columns, strict=True)]
    runs["entry"] = [e for e, _ in found]
    runs["trial"] = [t for _, t in found]
    runs["phase"], runs["study"] = phase, study
    return replace(results, runs=runs)


def _item(kind: str, choices: Sequence[Choice], key: str) -> str:
    """The ``--plugins`` item of the choice with this key (exact values)."""
    from .search_space import format_trial_value

    for c in choices:
        if json.dumps(list(_choice_key(kind, c))) == key:
            body = ";".join(f"{k}={format_trial_value(v)}" for k, v in c.params)
            name = f"{kind}:{c.component.plugin}/{c.name}"
            return f"{name}[{body}]" if body else name
    raise AssertionError(f"no {kind} choice with key {key}")  # pragma: no cover


def _combine(parts: list[Results]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One runs table and one history table, run ids renumbered in order."""
    from .results import HISTORY_COLUMNS, RUNS_COLUMNS

    runs_frames, history_frames, offset = [], [], 0
    for results in parts:
        runs = results.runs.copy()
        mapping = {old: offset + i for i, old in enumerate(runs["run_id"])}
        runs["run_id"] = runs["run_id"].map(mapping)
        history = results.history.copy()
        history["run_id"] = history["run_id"].map(mapping)
        runs_frames.append(runs)
        history_frames.append(history)
        offset += len(runs)
    runs = pd.concat(runs_frames, ignore_index=True)
    runs = runs.astype({"study": "Int64", "trial": "Int64", "entry": "Int64"})
    history = pd.concat(history_frames, ignore_index=True)[list(HISTORY_COLUMNS)]
    return runs[[*RUNS_COLUMNS, "entry"]], history.astype({"run_id": "int64"})


def untuned_title(runs: pd.DataFrame, title: str = "gdbench run") -> str:
    """The title of an untuned comparison's summary, saying that lr was not tuned
    (``gdbench run · lr fixed at 0.01 for all``; several: ``lr not tuned: 0.01, 0.1``)."""
    lrs = sorted(set(runs["lr"].dropna())) if "lr" in runs else []
    if len(lrs) == 1:
        return f"{title} · lr fixed at {lrs[0]:g} for all"
    if lrs:
        return f"{title} · lr not tuned: {', '.join(f'{v:g}' for v in lrs)}"
    return title


def write_folder(
    result: TuneResults,
    out: Path,
    plugin_set: PluginSet,
    devices: Sequence[str],
    argv: Sequence[str] | None,
    started: str,
) -> None:
    """Fill the results folder ``out`` (made before the studies ran, so that an unwritable
    ``--out`` is refused at once): tables, tuned.parquet, trials.parquet, meta.json,
    plots, profiles and the report."""
    from .meta import environment, now, sweep_meta
    from .results import data_frame
    from .store import atomic_write, write_json

    options = result.options
    seeds = (*options.tune_data_seeds, *options.eval_data_seeds)
    data = pd.concat([data_frame(replace(options.sweep.task, data_seed=s)) for s in seeds],
                     ignore_index=True)  # fmt: skip
    runs, history = result.runs, result.history
    atomic_write(out / "data.parquet", lambda p: data.to_parquet(p, index=False))
    atomic_write(out / "history.parquet", lambda p: history.to_parquet(p, index=False))
    atomic_write(out / "runs.parquet", lambda p: runs.to_parquet(p, index=False))
    atomic_write(out / "runs.csv", lambda p: runs.to_csv(p, index=False))
    tuned, trials = result.tuned, result.trials
    atomic_write(out / "tuned.parquet", lambda p: tuned.to_parquet(p, index=False))
    atomic_write(out / "trials.parquet", lambda p: trials.to_parquet(p, index=False))
    meta = sweep_meta(replace(options.sweep, data_seeds=seeds), devices, [], plugin_set, 0, argv)
    meta.pop("batches", None)
    meta.update(
        command="tune", started=started, finished=now(), complete=result.complete,
        interrupted=result.interrupted, n_runs_planned=result.planned, n_runs_saved=len(runs),
        environment=environment(devices),
        tune={"preset": options.preset, "search": options.search, "trials": options.trials,
              "studies": options.studies, "lr_range": str(options.lr_range),
              "criterion": options.criterion, "tune_data_seeds": list(options.tune_data_seeds),
              "eval_data_seeds": list(options.eval_data_seeds),
              "seeds": list(options.sweep.seeds), "plugins": options.sweep.plugins},
    )  # fmt: skip
    write_json(out / "meta.json", meta)
    if options.sweep.plot and len(runs):
        from .report import plot_convergence

        evals = runs[runs["phase"] == "eval"]
        if len(evals):
            kept = history[history["run_id"].isin(evals["run_id"])]
            atomic_write(out / "convergence.png", lambda p: plot_convergence(evals, kept, p))
        if len(trials):
            atomic_write(out / "sensitivity.png",
                         lambda p: plot_sensitivity(trials, tuned, p))  # fmt: skip
    _write_profiles(runs, tuned, out, options.sweep.plot)
    if options.sweep.report:
        from .html_report import write_report_or_warn
        from .results import Results

        write_report_or_warn(out, Results(runs, history, out, result.complete,
                                          result.interrupted, result.planned))  # fmt: skip


def _write_profiles(runs: pd.DataFrame, tuned: pd.DataFrame, out: Path, plot: bool) -> None:
    """Performance profiles of the held-out runs when they span several workloads, one
    configuration per optimizer entry (its tuned lr differs from workload to workload)."""
    from .profiles import compute_profiles, n_workloads, plot_profiles
    from .store import atomic_write

    evals = runs[runs["phase"] == "eval"]
    if len(evals) == 0 or n_workloads(evals) < 2:
        return
    labels = dict(
        zip(
            zip(
                tuned["study"],
                tuned["optimizer_label"],
                tuned["lr"],
                tuned["loss_label"],
                strict=True,
            ),
            tuned["entry"],
            strict=True,
        )
    )
    evals = evals.assign(
        optimizer_entry=[
            labels.get((s, o, lr, loss), o)
            for s, o, lr, loss in zip(
                evals["study"],
                evals["optimizer_label"],
                evals["lr"],
                evals["loss_label"],
                strict=True,
            )
        ]
    )
    profiles = compute_profiles(evals, config=["optimizer_entry", "init_label"])
    atomic_write(out / "profiles.parquet", lambda p: profiles.to_parquet(p, index=False))
    if plot:
        import matplotlib.pyplot as plt

        def save(path: Path) -> None:
            fig = plot_profiles(profiles)
            fig.savefig(path, format="png")
            plt.close(fig)

        atomic_write(out / "profiles.png", save)


def tune_and_print(
    args: dict[str, Any], plugin_set: PluginSet, *, argv: Sequence[str], console: Any
) -> TuneResults:
    """``gdbench tune``: the command line's arguments (Python names) to a study, with a
    progress bar on stderr at a terminal, the tuned table on stdout; a stop by signal
    exits 130/143 with what was saved."""
    import typer
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from .task import TASK_FIELDS, Task

    task = Task(**{name: args.pop(name) for name, _ in TASK_FIELDS if name in args})
    for name in ("tune_data_seeds", "eval_data_seeds"):
        if isinstance(args[name], str):
            args[name] = parse_seed_spec(args[name], name)
    options = TuneOptions.from_arguments(args.pop("plugins") or "sgd", task=task, **args)
    err = Console(stderr=True)
    bar = Progress("[progress.description]{task.description}", BarColumn(),
                   MofNCompleteColumn(), TimeElapsedColumn(), console=err,
                   transient=True)  # fmt: skip
    job = bar.add_task("runs", total=None)

    def progress(done: int, total: int) -> None:
        if not bar.live.is_started and err.is_terminal:
            bar.start()
        bar.update(job, completed=done, total=total)

    try:
        result = run_tune(options, plugin_set, progress=progress, argv=argv,
                          notify=lambda note: typer.echo(f"gdbench: {note}", err=True))  # fmt: skip
    except OSError as exc:
        what = f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc)
        typer.echo(f"gdbench: error: cannot write results ({' '.join(what.split())})", err=True)
        raise typer.Exit(1) from None
    finally:
        if bar.live.is_started:
            bar.stop()
    if len(result.tuned):
        console.print(render_tuned(result.summary(), options))
    if result.out_dir is not None:
        console.print(f"results: {result.out_dir}")
    if result.interrupted:
        stopped = int((result.runs["status"] == "interrupted").sum())
        typer.echo(f"gdbench: {result.interrupted}: stopped; {len(result.runs) - stopped} runs "
                   f"finished, {stopped} interrupted (saved with status interrupted), "
                   f"{result.planned - len(result.runs)} not started", err=True)  # fmt: skip
        raise typer.Exit({"SIGINT": 130, "SIGTERM": 143}.get(result.interrupted, 130))
    return result
