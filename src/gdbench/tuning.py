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
import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .errors import UsageError
from .options import DEFAULT_DIVERGE_FACTOR, DEFAULT_TARGET, SweepOptions, _seeds
from .search_space import SEARCHES, Range, Space, parse_lr_range, parse_spaces

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

    def sweep(opts: SweepOptions) -> Results:
        nonlocal done
        offset = done
        tick = (lambda d, _t: progress(offset + d, planned)) if progress else None
        results = run_sweep(opts, plugin_set, progress=tick, notify=notify)
        done = offset + len(results.runs)
        return results

    parts: list[Results] = []
    interrupted: str | None = None
    started = _now()
    for study in range(options.studies):
        items = [s.item(p) for s, pts in zip(spaces, points[study], strict=True) for p in pts]
        opts = replace(base, plugins=",".join([*items, *others]),
                       seeds=options.study_seeds(study),
                       data_seeds=options.tune_data_seeds)  # fmt: skip
        results = sweep(opts)
        parts.append(_tag(results, registry, spaces, points[study], "tune", study))
        if results.interrupted:
            interrupted = results.interrupted
            break
    trials = trial_table(pd.concat([r.runs for r in parts], ignore_index=True))
    if len(trials):
        trials.insert(2, "entry_label", [spaces[int(e)].label for e in trials["entry"]])
    chosen = choose(trials, options.criterion)
    if interrupted is None:
        for study in range(options.studies):
            for (loss, init, device), group in _eval_groups(chosen[chosen["study"] == study]):
                items = [
                    spaces[e].item(points[study][e][t])
                    for e, t in zip(group["entry"], group["trial"], strict=True)
                ]
                items += [_item("loss", workload.losses, loss), _item("init", workload.inits, init)]
                opts = replace(base, plugins=",".join(items), device=(device,),
                               data_seeds=options.eval_data_seeds)  # fmt: skip
                results = sweep(opts)
                parts.append(_tag(results, registry, spaces, points[study], "eval", study))
                if results.interrupted:
                    interrupted = results.interrupted
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


def _kind_keys(runs: pd.DataFrame, kind: str) -> list[str]:
    """What identifies each run's loss or initializer choice, as text."""
    columns = (runs[f"{kind}_plugin"], runs[kind], runs[f"{kind}_params"])
    return [json.dumps(list(key)) for key in zip(*columns, strict=True)]


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


def _scores(group: pd.DataFrame, column: str) -> float:
    """Median over runs, with runs that never reach the target (or did not end ok)
    counted as infinite."""
    ok = (group["status"] == "ok").to_numpy().copy()
    values = group[column].to_numpy(dtype=float)
    if column != "gap":
        ok &= group["solved"].astype(bool).to_numpy()
    values = np.where(ok & np.isfinite(values), values, np.inf)
    return float(np.median(values)) if values.size else math.inf


def trial_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per study × entry × trial × loss × initializer × device: the trial's
    hyper-parameters and its medians over its tuning runs (unsolved: infinite)."""
    rows = []
    keys = ["study", "entry", "trial", "loss_label", "init_label", "device"]
    runs = runs.assign(_loss=_kind_keys(runs, "loss"), _init=_kind_keys(runs, "init"))
    for key, group in runs.groupby([*keys, "_loss", "_init"], sort=False, dropna=False):
        first = group.iloc[0]
        params = {"lr": float(first["lr"]), **json.loads(first["optimizer_params"])}
        rows.append(
            {
                **dict(zip(keys, key[: len(keys)], strict=True)),
                "optimizer": first["optimizer"],
                "optimizer_label": first["optimizer_label"],
                "lr": float(first["lr"]),
                "optimizer_params": first["optimizer_params"],
                "params": json.dumps(params, sort_keys=True),
                "runs": len(group),
                "solved": int(group["solved"].astype(bool).sum()),
                "diverged": int((group["status"] == "diverged").sum()),
                "interrupted": int((group["status"] == "interrupted").sum()),
                "epochs_to_target": _scores(group, "epochs_to_target"),
                "seconds_to_target": _scores(group, "seconds_to_target"),
                "gap": _scores(group, "gap"),
                "_loss": key[-2],
                "_init": key[-1],
            }
        )
    return pd.DataFrame(rows)


def choose(trials: pd.DataFrame, criterion: str) -> pd.DataFrame:
    """The best trial per study × entry × loss × initializer × device."""
    column = {"epochs": "epochs_to_target", "seconds": "seconds_to_target", "gap": "gap"}
    if trials.empty:
        return trials
    complete = trials[trials["interrupted"] == 0]  # a stopped study: what finished
    ranked = complete.sort_values([column[criterion], "gap", "trial"], kind="stable")
    group = ["study", "entry", "loss_label", "init_label", "device", "_loss", "_init"]
    best = ranked.groupby(group, sort=False, dropna=False).head(1)
    order = {k: i for i, k in enumerate(dict.fromkeys(zip(
        trials["device"], trials["_loss"], trials["_init"], strict=True)))}  # fmt: skip
    position = [order[k] for k in zip(best["device"], best["_loss"], best["_init"], strict=True)]
    best = best.assign(_order=position)
    best = best.sort_values(["study", "entry", "_order"], kind="stable", ignore_index=True)
    return best.drop(columns="_order")


def _eval_groups(chosen: pd.DataFrame) -> list[tuple[tuple[Any, Any, str], pd.DataFrame]]:
    """The chosen trials of one study by (loss, init, device): one held-out sweep each."""
    groups: dict[tuple[Any, Any, str], list[int]] = {}
    for i, (loss, init, device) in enumerate(
        zip(chosen["_loss"], chosen["_init"], chosen["device"], strict=True)
    ):
        groups.setdefault((loss, init, device), []).append(i)
    return [(key, chosen.iloc[idx]) for key, idx in groups.items()]


def tuned_table(
    chosen: pd.DataFrame, trials: pd.DataFrame, runs: pd.DataFrame, spaces: list[Space]
) -> pd.DataFrame:
    """``tuned.parquet``: per study × entry × loss × initializer × device, the chosen
    hyper-parameters, the best trial's medians on the tuning data and the held-out
    statistics of the chosen configuration."""

    evals = runs[runs["phase"] == "eval"]
    n_trials = (
        trials.groupby(["study", "entry"])["trial"].nunique().to_dict() if len(trials) else {}
    )
    rows = []
    for _, c in chosen.iterrows():
        space = spaces[int(c["entry"])]
        mine = evals[
            (evals["study"] == c["study"]) & (evals["entry"] == c["entry"])
            & (evals["loss_label"] == c["loss_label"]) & (evals["init_label"] == c["init_label"])
            & (evals["device"] == c["device"])
        ]  # fmt: skip
        ok = mine[mine["status"] == "ok"]
        solved = mine[mine["solved"].astype(bool)]
        row = {
            "study": int(c["study"]),
            "optimizer": c["optimizer"],
            "entry": space.label,
            "tuned": json.dumps(space.scales),
            "optimizer_label": c["optimizer_label"],
            "lr": c["lr"],
            "optimizer_params": c["optimizer_params"],
            "params": c["params"],
            "loss_label": c["loss_label"],
            "init_label": c["init_label"],
            "device": c["device"],
            "trial": int(c["trial"]),
            "trials": int(n_trials.get((c["study"], c["entry"]), 0)),
            "tune_runs": int(c["runs"]),
            "tune_solved": int(c["solved"]),
            "tune_epochs_to_target": _finite(c["epochs_to_target"]),
            "tune_seconds_to_target": _finite(c["seconds_to_target"]),
            "tune_gap": _finite(c["gap"]),
            "eval_runs": len(mine),
            "eval_solved": len(solved),
        }
        row.update({f"eval_{k}": v for k, v in _medians(ok, solved).items()
                    if not k.endswith("_interval_exact")})  # fmt: skip
        row["target"] = float(mine["target"].iloc[0]) if len(mine) else math.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=TUNED_COLUMNS)


TUNED_COLUMNS = [
    "study", "optimizer", "entry", "tuned", "optimizer_label", "lr", "optimizer_params",
    "params", "loss_label", "init_label", "device", "trial", "trials", "tune_runs",
    "tune_solved", "tune_epochs_to_target", "tune_seconds_to_target", "tune_gap",
    "eval_runs", "eval_solved", "eval_gap", "eval_gap_low", "eval_gap_high",
    "eval_epochs_to_target", "eval_epochs_to_target_low", "eval_epochs_to_target_high",
    "eval_seconds_to_target", "eval_seconds_to_target_low", "eval_seconds_to_target_high",
    "target",
]  # fmt: skip


def _finite(value: float) -> float:
    return float(value) if math.isfinite(value) else math.nan


def _chosen_text(row: Any, tuned: list[str]) -> str:
    """The chosen values of the tuned hyper-parameters (``lr=0.2154``); for an entry
    that tunes nothing, its fixed lr (``lr=0.01 (fixed)``)."""
    params = json.loads(row["params"])
    if not tuned:
        return f"lr={_short(params.get('lr'))} (fixed)"
    return ";".join(f"{k}={_short(params.get(k))}" for k in tuned)


def _short(value: Any) -> str:
    if isinstance(value, list):
        return ":".join(_short(v) for v in value)
    return f"{value:.4g}" if isinstance(value, float) else str(value)


SUMMARY_KEYS = ["entry", "loss_label", "init_label", "device"]


def tuned_summary(tuned: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Over studies (see ``TuneResults.summary``)."""

    if tuned.empty:
        return pd.DataFrame()
    evals = runs[runs["phase"] == "eval"]
    rows = []
    for key, group in tuned.groupby(SUMMARY_KEYS, sort=False, dropna=False):
        studies = set(group["study"])
        label = evals["optimizer"] == group["optimizer"].iloc[0]
        for col, value in zip(SUMMARY_KEYS[1:], key[1:], strict=True):
            label &= evals[col] == value
        label &= evals["study"].isin(studies)
        chosen_keys = set(zip(group["study"], group["optimizer_label"], group["lr"], strict=True))
        mine = evals[label]
        keep = [
            (s, o, lr) in chosen_keys
            for s, o, lr in zip(mine["study"], mine["optimizer_label"], mine["lr"], strict=True)
        ]
        mine = mine[np.array(keep, dtype=bool)]  # fmt: skip
        tuned_names = list(json.loads(group["tuned"].iloc[0]))
        chosen = list(dict.fromkeys(_chosen_text(r, tuned_names) for _, r in group.iterrows()))
        ok = mine[mine["status"] == "ok"]
        solved = mine[mine["solved"].astype(bool)]
        row: dict[str, Any] = {
            **dict(zip(SUMMARY_KEYS, key, strict=True)),
            "optimizer": group["optimizer"].iloc[0],
            "chosen": " / ".join(chosen),
            "studies": len(group),
            "runs": len(mine),
            "solved": len(solved),
        }
        row.update(_medians(ok, solved))
        per_study = group["eval_epochs_to_target"].to_numpy(dtype=float)
        row["study_epochs_min"] = (
            float(np.nanmin(per_study)) if np.isfinite(per_study).any() else math.nan
        )
        row["study_epochs_max"] = (
            float(np.nanmax(per_study)) if np.isfinite(per_study).any() else math.nan
        )
        best = group["tune_epochs_to_target"].to_numpy(dtype=float)
        row["tune_epochs_to_target"] = float(np.median(np.where(np.isfinite(best), best, np.inf)))
        best_s = group["tune_seconds_to_target"].to_numpy(dtype=float)
        row["tune_seconds_to_target"] = float(
            np.median(np.where(np.isfinite(best_s), best_s, np.inf))
        )
        rows.append(row)
    return pd.DataFrame(rows)


def render_tuned(summary: pd.DataFrame, options: TuneOptions) -> Any:
    """The tuned comparison as a rich Table: per optimizer (× loss, init, device that
    vary), the chosen hyper-parameters and the held-out statistics."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    vary = [c for c in SUMMARY_KEYS if summary[c].nunique(dropna=False) > 1 or c == "entry"]
    fixed = [c for c in SUMMARY_KEYS if c not in vary]
    names = {"entry": "optimizer", "loss_label": "loss", "init_label": "init", "device": "device"}
    many = options.studies > 1
    caption = [" · ".join(f"{names[c]} {summary[c].iloc[0]}" for c in fixed)]
    caption += [
        f"{options.describe()}",
        f"chosen: the best trial{' per study' if many else ''} (on the tuning data); the "
        f"rest: held-out runs of the chosen configuration{'s, studies pooled' if many else ''}",
        f"gap: final loss − exact optimum, median over ok runs [95% CI]; solved: rel. gap ≤ "
        f"{options.sweep.target:g} reached and kept; epochs, time: to target, median over "
        "solved runs [95% CI] (* under 6 runs: min–max)",
    ]
    if many:
        caption.append(
            "studies: per-study median epochs, min–max; best trial: median over "
            "studies of the best trial's epochs to target (AlgoPerf's score)"
        )
    table = Table(
        title="gdbench tune",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        caption=escape("\n".join(filter(None, caption))),
        caption_justify="left",
    )
    for c in vary:
        table.add_column(names[c], no_wrap=True)
    table.add_column("chosen")
    for header in ("solved", "gap", "epochs", "time"):
        table.add_column(header, justify="right", no_wrap=True)
    if many:
        table.add_column("studies", justify="right", no_wrap=True)
        table.add_column("best trial", justify="right", no_wrap=True)
    for _, r in summary.iterrows():
        cells = [str(r[c]) for c in vary] + [r["chosen"], f"{r['solved']}/{r['runs']}"]
        cells += [
            _with_interval(r, "gap", ".1e"),
            _with_interval(r, "epochs_to_target", ".0f"),
            _with_interval(r, "seconds_to_target", "s"),
        ]
        if many:
            cells.append(_span(r["study_epochs_min"], r["study_epochs_max"]))
            cells.append(_fmt(r["tune_epochs_to_target"], ".0f"))
        table.add_row(*(escape(c) for c in cells))
    return table


def _fmt(value: float, spec: str) -> str:
    if not math.isfinite(value):
        return "—"
    if spec == "s":
        return f"{value * 1e3:.0f} ms" if value < 1 else f"{value:.2f} s"
    return format(value, spec)


def _with_interval(row: Any, name: str, spec: str) -> str:
    median = _fmt(row[name], spec)
    if not math.isfinite(row[f"{name}_low"]) or median == "—":
        return median
    mark = "" if row[f"{name}_interval_exact"] else "*"
    return f"{median} [{_fmt(row[f'{name}_low'], spec)}–{_fmt(row[f'{name}_high'], spec)}]{mark}"


def _span(lo: float, hi: float) -> str:
    if not math.isfinite(lo):
        return "—"
    return f"{lo:.0f}" if lo == hi else f"{lo:.0f}–{hi:.0f}"


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


def plot_sensitivity(trials: pd.DataFrame, tuned: pd.DataFrame, path: Path) -> None:
    """How forgiving each optimizer is: per optimizer entry and tuned hyper-parameter,
    the trials' median final gap (top) and epochs to target (bottom) on the tuning data,
    one colour per workload (loss, initializer, device), every study's trials together
    (joined by a line when the entry tunes one hyper-parameter), the chosen trial circled
    and the held-out median at the chosen value as a black diamond. Diverged or unsolved
    trials are marked × at the top of their panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.transforms import blended_transform_factory

    panels = []  # (entry, its tuned rows, hyper-parameter, scale)
    for entry, group in tuned.groupby("entry", sort=False):
        for hp, scale in json.loads(group["tuned"].iloc[0]).items():
            panels.append((entry, group, hp, scale))
    n = max(1, len(panels))
    fig, axes = plt.subplots(
        2, n, figsize=(1 + 4.2 * n, 7.5), dpi=110, squeeze=False, layout="constrained"
    )
    workload_cols = [c for c in ("loss_label", "init_label", "device")
                     if trials[c].nunique(dropna=False) > 1] or ["loss_label"]  # fmt: skip
    workloads = list(dict.fromkeys(zip(*(trials[c] for c in workload_cols), strict=True)))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for j, (entry, mine_t, hp, scale) in enumerate(panels):
        mine = trials[trials["entry_label"] == entry]
        mine_tuned_names = json.loads(mine_t["tuned"].iloc[0])
        xs_all = [_value(p, hp) for p in mine["params"]]
        categorical = not all(isinstance(v, (int, float)) for v in xs_all)
        cats = list(dict.fromkeys(map(str, xs_all))) if categorical else []
        for row_i, (metric, eval_metric, ylabel) in enumerate((
            ("gap", "eval_gap", "final gap (median over tuning runs)"),
            ("epochs_to_target", "eval_epochs_to_target", "epochs to target (median)"),
        )):  # fmt: skip
            ax = axes[row_i][j]
            top = blended_transform_factory(ax.transData, ax.transAxes)
            for w, workload in enumerate(workloads):
                colour = colours[w % len(colours)]
                sel = np.ones(len(mine), dtype=bool)
                for col, value in zip(workload_cols, workload, strict=True):
                    sel &= (mine[col] == value).to_numpy()
                part = mine[sel]
                label = " · ".join(map(str, workload)) if j == 0 and row_i == 0 else None
                x = np.array([_x(_value(p, hp), cats) for p in part["params"]], dtype=float)
                y = part[metric].to_numpy(dtype=float)
                order = np.argsort(x, kind="stable")
                x, y = x[order], y[order]
                if metric == "gap":
                    y = np.maximum(y, 1e-16)
                good = np.isfinite(y)
                style = "o-" if len(mine_tuned_names) == 1 else "o"  # a curve: one tuned value
                ax.plot(x[good], y[good], style, ms=3, lw=1, color=colour, alpha=0.8, label=label)
                ax.plot(x[~good], np.full((~good).sum(), 0.97), "x", color=colour, transform=top)
                picked = mine_t
                for col, value in zip(workload_cols, workload, strict=True):
                    picked = picked[picked[col] == value]
                for _, c in picked.iterrows():
                    cx = _x(_value(c["params"], hp), cats)
                    tx = c[{"gap": "tune_gap"}.get(metric, f"tune_{metric}")]
                    if math.isfinite(tx):
                        ax.plot([cx], [max(tx, 1e-16)], "o", ms=10, mfc="none", color=colour)
                    ev = c[eval_metric]
                    if math.isfinite(ev):
                        ax.plot([cx], [max(ev, 1e-16)], "D", ms=6, color="black", zorder=5)
            drawn = [line.get_ydata() for line in ax.get_lines() if line.get_transform() != top]
            values = np.concatenate([np.asarray(d, dtype=float) for d in drawn] or [np.zeros(0)])
            if scale == "log" and len(mine):
                ax.set_xscale("log")
            if categorical:
                ax.set_xticks(range(len(cats)), cats, rotation=30, fontsize=8)
            if metric == "gap" and (values > 0).any():  # an interrupted study may have none
                ax.set_yscale("log")
            ax.grid(True, which="both", alpha=0.3)
            ax.set_xlabel(hp)
            if j == 0:
                ax.set_ylabel(ylabel)
            if row_i == 0:
                ax.set_title(str(entry))
    if len(workloads) > 0 and panels:
        axes[0][0].legend(fontsize=8, loc="best")
    fig.suptitle(
        "gdbench tune: sensitivity on the tuning data\n○ chosen · ◆ held-out median "
        "· × diverged or never at target",
        fontsize=10,
    )  # two lines: fits one panel
    fig.savefig(path, format="png")
    plt.close(fig)


def _value(params: str, hp: str) -> Any:
    value = json.loads(params).get(hp)
    return tuple(value) if isinstance(value, list) else value


def _x(value: Any, cats: list[str]) -> float:
    return float(cats.index(str(value))) if cats else float(value)


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


def _medians(ok: pd.DataFrame, solved: pd.DataFrame) -> dict[str, Any]:
    """Median gap (over ok runs) and epochs and seconds to target (over solved runs),
    each with its order-statistic interval and whether that interval is exact."""
    from .report import median_interval

    out: dict[str, Any] = {}
    for name, values in (("gap", ok["gap"]), ("epochs_to_target", solved["epochs_to_target"]),
                         ("seconds_to_target", solved["seconds_to_target"])):  # fmt: skip
        x = values.to_numpy(dtype=float)
        x = x[np.isfinite(x)]
        lo, hi, exact = median_interval(x)
        out[name] = float(np.median(x)) if x.size else math.nan
        out[f"{name}_low"], out[f"{name}_high"] = lo, hi
        out[f"{name}_interval_exact"] = exact
    return out
