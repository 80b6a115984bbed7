"""What a tuning study found: the trial table, the choice per optimizer, the tuned table
(one row per study × optimizer × loss × initializer × device) and its summary over
studies, and the tuned comparison the CLI prints (see ``tuning`` for the studies)."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from .search_space import Space
    from .tuning import TuneOptions


def kind_keys(runs: pd.DataFrame, kind: str) -> list[str]:
    """What identifies each run's loss or initializer choice, as text."""
    columns = (runs[f"{kind}_plugin"], runs[kind], runs[f"{kind}_params"])
    return [json.dumps(list(key)) for key in zip(*columns, strict=True)]


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
    runs = runs.assign(_loss=kind_keys(runs, "loss"), _init=kind_keys(runs, "init"))
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


def eval_groups(chosen: pd.DataFrame) -> list[tuple[tuple[Any, Any, str], pd.DataFrame]]:
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
    """The tuned comparison, a rich table and its caption: per optimizer (× loss, init, device that
    vary), the chosen hyper-parameters and the held-out statistics."""
    from rich import box
    from rich.console import Group
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

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
    table = Table(title="gdbench tune", title_justify="left", box=box.SIMPLE_HEAD)
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
    # the caption as lines of its own: they wrap at the terminal's width, not the table's
    return Group(table, Text("\n".join(filter(None, caption))))


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
