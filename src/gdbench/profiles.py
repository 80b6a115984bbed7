"""Performance profiles (Dolan & Moré, 2002) of time to target across workloads, with the
AlgoPerf-style score: which configuration is fast on most of what the sweep spans.

A **workload** is one problem a configuration is asked to solve: the runs' loss (with its
hyper-parameters) and task (every task parameter, the data seed included), i.e. every
column of ``WORKLOAD`` that varies in the sweep. A **configuration** is what is compared
(``CONFIGURATION``: optimizer with its hyper-parameters, learning rate, initializer); its
run seeds on one workload are repetitions, summarised by their median. Devices are never
pooled: each device gets its own profiles.

For configuration p on workload s, t(p, s) is the median over p's runs on s of the time
to target (``epochs_to_target`` or ``seconds_to_target``), an unsolved run counting as
infinitely long (so a configuration fails a workload when most of its runs there do).
The ratio r(p, s) = t(p, s) / min_p t(p, s) is ∞ when t(p, s) is ∞ (and on a workload no
configuration solves); rho_p(tau) is the fraction of the device's workloads with
r(p, s) ≤ tau. The score is the area under rho_p over tau in [1, 4], divided by 3, which
equals the mean over workloads of max(0, 4 − r(p, s)) / 3: 1 when p is fastest
everywhere, 0 when it is never within 4× of the fastest.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .task import TASK_FIELDS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

CONFIGURATION = ["optimizer_label", "lr", "init_label"]
"""The columns of the runs table that make one compared configuration."""

WORKLOAD = ["loss_label", *(name for name, _ in TASK_FIELDS)]
"""The columns of the runs table that make one workload (the data seed among them)."""

MEASURES = {"epochs": "epochs_to_target", "seconds": "seconds_to_target"}
"""measure name → the runs table's column of time to target."""

TAUS = 2.0 ** (np.arange(61) / 20)
"""The profile's grid: 1 to 8, 20 points per doubling (2 and 4 exactly on it)."""

TAU_SCORE = 4.0
"""The score integrates the profile over tau in [1, TAU_SCORE] (AlgoPerf's choice)."""

PROFILES_SCHEMA: tuple[tuple[str, str], ...] = (
    ("configuration", "the configuration, as one label (optimizer lr=… · init)"),
    ("optimizer_label", "optimizer with the hyper-parameters that differ from its defaults"),
    ("lr", "learning rate"),
    ("init_label", "initializer with the hyper-parameters that differ from its defaults"),
    ("device", "the device whose runs this profile covers (devices are never pooled)"),
    ("measure", "epochs or seconds: which time to target"),
    ("tau", "ratio to the fastest configuration on a workload, 1 to 8"),
    ("rho", "fraction of the device's workloads solved within tau × the fastest's time"),
    ("score", "area under rho for tau in [1, 4], divided by 3 (0 to 1; 1: always fastest)"),
    ("workloads", "number of workloads on this device"),
)
"""(column, meaning) of ``profiles.parquet``, in order."""


def eligible_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs profiles are computed from: of a tuning study, the held-out evaluation
    runs (``phase == "eval"``) when there are any; otherwise every run."""
    if "phase" in runs.columns and (runs["phase"] == "eval").any():
        return runs[runs["phase"] == "eval"]
    return runs


def workload_columns(runs: pd.DataFrame, workload: Sequence[str] = WORKLOAD) -> list[str]:
    """The workload columns that vary in ``runs`` (the others name no distinction)."""
    return [c for c in workload if c in runs.columns and runs[c].nunique(dropna=False) > 1]


def n_workloads(runs: pd.DataFrame, workload: Sequence[str] = WORKLOAD) -> int:
    """The most workloads any one device has in ``runs`` (1 when nothing varies)."""
    runs = eligible_runs(runs)
    columns = workload_columns(runs, workload)
    if runs.empty:
        return 0
    if not columns:
        return 1
    return int(runs.groupby("device", dropna=False)[columns].apply(_count_rows).max())


def _count_rows(frame: pd.DataFrame) -> int:
    return len(frame.drop_duplicates())


def times(
    runs: pd.DataFrame,
    measure: str = "epochs",
    config: Sequence[str] = CONFIGURATION,
    workload: Sequence[str] = WORKLOAD,
) -> pd.DataFrame:
    """t(p, s): one row per device and workload (indexed by ``device`` and the workload
    columns that vary), one column per configuration (its label): the median time to
    target over its runs there, ∞ when unsolved or not run there."""
    runs = eligible_runs(runs)
    columns = workload_columns(runs, workload)
    t = runs[MEASURES[measure]].to_numpy(dtype=float)
    t = np.where(runs["solved"].eq(True).to_numpy() & ~np.isnan(t), t, np.inf)
    frame = runs[["device", *columns]].copy()
    frame["_config"] = [config_label(dict(zip(config, key, strict=True)))
                        for key in zip(*(runs[c] for c in config), strict=True)]  # fmt: skip
    frame["_t"] = t
    medians = frame.groupby(["device", *columns, "_config"], sort=False, dropna=False)["_t"]
    table = medians.median().unstack("_config")
    order = list(dict.fromkeys(frame["_config"]))
    table = table.reindex(columns=order).fillna(np.inf)
    table.columns.name = "configuration"
    return table


def ratios(t: pd.DataFrame) -> pd.DataFrame:
    """r(p, s) from ``times``: each workload's times over its fastest (∞ where unsolved or
    where nothing solved the workload; 1 for a time of 0 when that is the fastest)."""
    values = t.to_numpy(dtype=float)
    best = values.min(axis=1, keepdims=True) if values.size else values
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(best > 0, values / best, np.where(values == 0, 1.0, np.inf))
    r = np.where(np.isfinite(best) & np.isfinite(values), r, np.inf)
    return pd.DataFrame(r, index=t.index, columns=t.columns)


def score(r: np.ndarray, tau_max: float = TAU_SCORE) -> np.ndarray:
    """Area under the profile over [1, tau_max] / (tau_max − 1), exactly, per column of
    ratios ``r`` (workloads × configurations)."""
    return np.clip(tau_max - r, 0.0, tau_max - 1.0).mean(axis=0) / (tau_max - 1.0)


def compute_profiles(
    runs: pd.DataFrame,
    *,
    config: Sequence[str] = CONFIGURATION,
    workload: Sequence[str] = WORKLOAD,
    taus: Sequence[float] | np.ndarray = TAUS,
) -> pd.DataFrame:
    """The performance profiles of ``runs`` (a runs table): one row per configuration ×
    device × measure × tau, columns ``PROFILES_SCHEMA`` (with ``config`` in place of the
    configuration columns when given). A tuning study's profiles cover its held-out
    runs; ``config`` and ``workload`` choose other columns (e.g. a study's)."""
    columns = ["configuration", *config, "device", "measure", "tau", "rho", "score", "workloads"]
    runs = eligible_runs(runs)
    if runs.empty:
        return pd.DataFrame(columns=columns)
    taus = np.asarray(taus, dtype=float)
    labels: dict[str, dict[str, Any]] = {}
    for key in zip(*(runs[c] for c in config), strict=True):
        values = dict(zip(config, key, strict=True))
        labels.setdefault(config_label(values), values)
    frames = []
    for measure in MEASURES:
        t = times(runs, measure, config, workload)
        for device, block in t.groupby(level="device", sort=False):
            r = ratios(block).to_numpy(dtype=float)  # workloads × configurations
            rho = (r[None, :, :] <= taus[:, None, None]).mean(axis=1)  # taus × configurations
            scores = score(r)
            for j, label in enumerate(block.columns):
                frame = pd.DataFrame({"tau": taus, "rho": rho[:, j]})
                frames.append(frame.assign(configuration=label, **labels[label], device=device,
                                           measure=measure, score=scores[j],
                                           workloads=len(block)))  # fmt: skip
    return pd.concat(frames, ignore_index=True)[columns]


def config_label(values: dict[str, Any]) -> str:
    """``adam lr=0.01 · default``: the configuration's values, lr named and next to the
    optimizer."""
    rest = [str(v) for c, v in values.items() if c not in ("optimizer_label", "lr")]
    head = [str(values[c]) if c != "lr" else f"lr={values[c]:g}"
            for c in ("optimizer_label", "lr") if c in values]  # fmt: skip
    return " · ".join([" ".join(head), *rest] if head else rest)


def scores(profiles: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration × device × measure: its score and number of workloads,
    best first within each device and measure."""
    if profiles.empty:
        return pd.DataFrame(columns=["configuration", "device", "measure", "score", "workloads"])
    keep = ["configuration", "device", "measure", "score", "workloads"]
    table = profiles.drop_duplicates(["configuration", "device", "measure"])[keep]
    return table.sort_values(["device", "measure", "score"], ascending=[True, True, False],
                             kind="stable", ignore_index=True)  # fmt: skip


def plot_profiles(profiles: pd.DataFrame, path: Path | None = None) -> Figure:
    """One panel per device × measure: rho against tau (log scale) per configuration, a
    step function, the legend giving each configuration's score, best first. Saved to
    ``path`` when given (format from its suffix: .png, .svg, …) and closed; returned."""
    from matplotlib.figure import Figure

    devices = list(dict.fromkeys(profiles["device"]))
    measures = [m for m in MEASURES if m in set(profiles["measure"])]
    n_configs = profiles["configuration"].nunique()
    legend_outside = n_configs > 8
    fig = Figure(
        figsize=(5.2 * len(measures) + (3.2 if legend_outside else 0), 4.2 * len(devices)),
        dpi=110,
    )
    axes = fig.subplots(len(devices), len(measures), squeeze=False)
    styles = _styles(list(dict.fromkeys(profiles["configuration"])))
    short = _legend_labels(profiles)
    for row, device in enumerate(devices):
        for col, measure in enumerate(measures):
            ax = axes[row][col]
            block = profiles[(profiles["device"] == device) & (profiles["measure"] == measure)]
            ranked = block.drop_duplicates("configuration").sort_values(
                "score", ascending=False, kind="stable"
            )
            for label, value in zip(ranked["configuration"], ranked["score"], strict=True):
                curve = block[block["configuration"] == label]
                ax.step(curve["tau"], curve["rho"], where="post", lw=1.5,
                        label=f"{short[label]}  ({value:.2f})", **styles[label])  # fmt: skip
            ax.set_xscale("log", base=2)
            taus = block["tau"]
            ax.set_xlim(float(taus.min()), float(taus.max()))
            ticks = [t for t in (1, 1.5, 2, 3, 4, 6, 8, 16) if t <= float(taus.max())]
            ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
            ax.minorticks_off()
            ax.set_ylim(-0.03, 1.03)
            ax.axvline(TAU_SCORE, color="0.6", lw=0.8, ls=":")
            ax.grid(True, which="major", alpha=0.3)
            n = int(block["workloads"].iloc[0]) if len(block) else 0
            ax.set_title(f"{device} · {measure} to target · {n} workloads", fontsize=10)
            ax.set_xlabel("tau: within this factor of the fastest")
            if col == 0:
                ax.set_ylabel("fraction of workloads")
            if legend_outside:
                ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                          ncol=1 if n_configs <= 24 else 2, title="score (tau ≤ 4)",
                          title_fontsize=7)  # fmt: skip
            else:
                ax.legend(fontsize=7, loc="lower right", title="score (tau ≤ 4)",
                          title_fontsize=7)  # fmt: skip
    fig.suptitle("gdbench: performance profiles of time to target")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, format=Path(path).suffix.lstrip(".") or "png")
    return fig


def _legend_labels(profiles: pd.DataFrame) -> dict[str, str]:
    """Each configuration's label without the values every configuration shares (an
    initializer common to all, say), but always with its optimizer and lr."""
    columns = [c for c in CONFIGURATION if c in profiles.columns]
    if len(columns) < len(CONFIGURATION):
        return {label: label for label in profiles["configuration"]}
    keep = [c for c in columns if c in ("optimizer_label", "lr") or profiles[c].nunique() > 1]
    rows = profiles.drop_duplicates("configuration")
    return {
        row["configuration"]: config_label({c: row[c] for c in keep}) for _, row in rows.iterrows()
    }


def _styles(labels: list[str]) -> dict[str, dict[str, Any]]:
    """A colour and line style per configuration: ten colours, then dashed, dotted, …"""
    colors = [f"C{i}" for i in range(10)]
    dashes = ["-", "--", ":", "-."]
    return {
        label: {"color": colors[i % 10], "linestyle": dashes[(i // 10) % len(dashes)]}
        for i, label in enumerate(labels)
    }


def write_profiles(runs: pd.DataFrame, out_dir: Path, plot: bool = True) -> bool:
    """``profiles.parquet`` (and ``profiles.png`` when ``plot``) in ``out_dir`` when the
    runs span more than one workload on some device; True if written."""
    from .store import atomic_write

    if n_workloads(runs) < 2:
        return False
    profiles = compute_profiles(runs)
    atomic_write(out_dir / "profiles.parquet", lambda p: profiles.to_parquet(p, index=False))
    if plot:
        atomic_write(out_dir / "profiles.png", lambda p: _save_png(profiles, p))
    return True


def _save_png(profiles: pd.DataFrame, path: Path) -> None:
    fig = plot_profiles(profiles)
    fig.savefig(path, format="png")
