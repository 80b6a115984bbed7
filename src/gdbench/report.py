"""Turning the tables into what a person reads: a summary table and a convergence plot."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np
import pandas as pd

from .engine.records import DIVERGED, ERROR, OK

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from rich.table import Table

CONFIG = ["optimizer_label", "loss_label", "init_label", "lr", "device"]
"""The columns that identify a configuration; seeds vary within one."""


LEVEL = 0.95
"""Coverage of the interval printed around each median gap."""


def summary(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration, over its data × init seeds.

    ``gap`` statistics and ``epoch_us`` cover the runs that finished ``ok`` (a diverged
    run's parameters and timings are not averaged into anything); ``solved`` counts over
    every run; ``epochs_to_target`` and ``seconds_to_target`` are medians over the solved
    runs; ``status`` counts every status.
    """
    if runs.empty:
        return pd.DataFrame()
    rows = []
    for key, group in runs.groupby(CONFIG, sort=False, dropna=False):
        ok = group[group["status"] == OK]
        solved = group[group["solved"].astype(bool)]
        lo, hi, exact = median_interval(ok["gap"].to_numpy(dtype=float), LEVEL)
        rows.append(
            {
                **dict(zip(CONFIG, key, strict=True)),
                "runs": len(group),
                "ok": len(ok),
                "gap_median": _median(ok["gap"]),
                "gap_low": lo,
                "gap_high": hi,
                "gap_interval_exact": exact,
                "solved": len(solved),
                "epochs_to_target": _median(solved["epochs_to_target"]),
                "seconds_to_target": _median(solved["seconds_to_target"]),
                "epoch_us": _median(ok["epoch_us"]),
                "status": status_counts(group["status"]),
                "target": float(group["target"].iloc[0]),
            }
        )
    return pd.DataFrame(rows)


def _median(values: pd.Series) -> float:
    finite = values.to_numpy(dtype=float)
    finite = finite[np.isfinite(finite)]
    return float(np.median(finite)) if finite.size else float("nan")


def median_interval(values: np.ndarray, level: float = LEVEL) -> tuple[float, float, bool]:
    """A distribution-free confidence interval for the median, from order statistics.

    The interval [x₍ⱼ₎, x₍ₙ₋ⱼ₊₁₎] covers the median with probability 1 − 2·P(Bin(n, ½) < j);
    the largest j reaching ``level`` is used. With too few values for that (n < 6 at
    95%), the interval is the range, and the third value is False.
    """
    x = np.sort(values[np.isfinite(values)])
    n = x.size
    if n == 0:
        return float("nan"), float("nan"), False
    tail, j = 0.0, 0
    while j < n // 2:
        tail += math.comb(n, j) / 2**n  # P(Bin(n, ½) = j)
        if 2 * tail > 1 - level:
            break
        j += 1
    if j == 0:
        return float(x[0]), float(x[-1]), False
    return float(x[j - 1]), float(x[n - j]), True


def status_counts(statuses: pd.Series) -> str:
    """``ok 2 · diverged 1``: every status, in a fixed order."""
    counts = statuses.value_counts()
    order = [s for s in (OK, DIVERGED, ERROR) if s in counts] + sorted(
        set(counts.index) - {OK, DIVERGED, ERROR}
    )
    return " · ".join(f"{s} {counts[s]}" for s in order)


Justify = Literal["left", "right"]


class SummaryColumn(NamedTuple):
    """One column of the printed summary."""

    header: str
    column: str | None
    """The summary column it shows when it is a configuration column, else None."""
    fmt: Callable[[Any], str]
    """Formats one row of ``summary()`` (a namedtuple: fields by name)."""
    justify: Justify


SUMMARY_COLUMNS = [
    SummaryColumn("optimizer", "optimizer_label", lambda r: r.optimizer_label, "left"),
    SummaryColumn("loss", "loss_label", lambda r: r.loss_label, "left"),
    SummaryColumn("init", "init_label", lambda r: r.init_label, "left"),
    SummaryColumn("lr", "lr", lambda r: f"{r.lr:g}", "right"),
    SummaryColumn("device", "device", lambda r: r.device, "left"),
    SummaryColumn("gap", "gap_median", lambda r: _num(r.gap_median, ".1e"), "right"),
    SummaryColumn("95% CI", "gap_low", lambda r: _interval(r), "right"),
    SummaryColumn("solved", None, lambda r: f"{r.solved}/{r.runs}", "right"),
    SummaryColumn("epochs", None, lambda r: _num(r.epochs_to_target, ".0f"), "right"),
    SummaryColumn("time", None, lambda r: _seconds(r.seconds_to_target), "right"),
    SummaryColumn("µs/epoch", None, lambda r: _num(r.epoch_us, ".0f"), "right"),
    SummaryColumn("runs", None, lambda r: r.status, "left"),
]


def render_summary(table: pd.DataFrame, title: str = "gdbench") -> Table:
    """A rich Table of ``summary()``'s output.

    Configuration columns that are the same in every row move into the caption, so the
    table stays readable in an 80-column terminal.
    """
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    constant = {
        col
        for _, col, _, _ in SUMMARY_COLUMNS
        if col in CONFIG and len(table) > 1 and table[col].nunique(dropna=False) == 1
    }
    if len(table) == 1:
        constant = {"loss_label", "init_label", "lr", "device"}
    hidden = set(constant)
    if (table["ok"] < 2).all():  # no interval to show for single runs
        hidden.add("gap_low")
    shown = [c for c in SUMMARY_COLUMNS if c[1] not in hidden]
    caption = " · ".join(
        f"{header} {fmt(_first_row(table))}"
        for header, col, fmt, _ in SUMMARY_COLUMNS
        if col in constant
    )
    t = Table(
        title=title,
        title_justify="left",
        caption=escape("\n".join(filter(None, [caption, footer(table)]))),
        caption_justify="left",
        box=box.SIMPLE_HEAD,
    )
    for header, _, _, justify in shown:
        t.add_column(header, justify=justify, no_wrap=True, min_width=min(len(header), 12))
    for r in table.itertuples(index=False):
        t.add_row(*(escape(fmt(r)) for _, _, fmt, _ in shown))  # labels hold [k=v]
    return t


def _num(v: float, fmt: str = ".4f") -> str:
    return "—" if not np.isfinite(v) else format(v, fmt)


def _interval(r: Any) -> str:
    if not np.isfinite(r.gap_low):
        return "—"
    mark = "" if r.gap_interval_exact else "*"
    return f"{r.gap_low:.1e}–{r.gap_high:.1e}{mark}"


def _seconds(v: float) -> str:
    if not np.isfinite(v):
        return "—"
    return f"{v * 1e3:.0f} ms" if v < 1 else f"{v:.2f} s"


def footer(table: pd.DataFrame) -> str:
    """What the columns mean, printed under the table."""
    target = f"{table['target'].iloc[0]:g}" if len(table) else "?"
    lines = ["gap: final loss − exact optimum of the run's own data; median over ok runs"]
    if (table["ok"] >= 2).any():
        lines.append(
            "95% CI: of that median (data × init seeds), from order statistics"
            + ("; * under 6 runs: min–max" if not table["gap_interval_exact"].all() else "")
        )
    lines.append(
        f"solved: rel. gap ≤ {target} reached and kept; epochs, time: to target (median "
        "over solved runs)"
    )
    return "\n".join(lines)


def _first_row(table: pd.DataFrame) -> Any:
    return next(table.itertuples(index=False))


MAX_LEGEND = 12
"""More lines than this make a legend unreadable; it is left out then."""


FLOOR = float(np.finfo(np.float32).eps)
"""Gaps below this fraction of the optimum are float32 rounding; drawn at it."""


def plot_convergence(runs: pd.DataFrame, history: pd.DataFrame, path: Path) -> None:
    """Gap to the exact optimum against epoch on a log scale, one panel per loss: the
    median over the ok runs of each configuration, with a band from the 10th to the 90th
    percentile. Gaps below float32 resolution (~1.2e-7 of the optimum) are drawn at it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = runs[runs["status"] == OK]
    merged = history.merge(ok[["run_id", "optimum_loss", *CONFIG]], on="run_id")
    losses = list(dict.fromkeys(runs["loss_label"]))
    fig, axes = plt.subplots(
        1, len(losses), figsize=(4 + 5 * len(losses), 5.5), dpi=110, squeeze=False
    )
    for ax, loss in zip(axes[0], losses, strict=True):
        _plot_panel(ax, merged[merged["loss_label"] == loss])
        left_out = int(((runs["loss_label"] == loss) & (runs["status"] != OK)).sum())
        note = f" ({left_out} runs not ok, left out)" if left_out else ""
        ax.set_title(f"loss: {loss}{note}")
    axes[0][0].set_ylabel("gap to the exact optimum (median over ok runs; band: 10–90%)")
    fig.suptitle("gdbench: convergence")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def _plot_panel(ax: Axes, merged: pd.DataFrame) -> None:
    n_lines = 0
    for key, group in merged.groupby(CONFIG, sort=False, dropna=False):
        curves = group.pivot(index="epoch", columns="run_id", values="gap")
        floors = group.groupby("run_id")["optimum_loss"].first().reindex(curves.columns)
        values = curves.to_numpy(dtype=float)
        floor = np.maximum(floors.to_numpy(dtype=float) * FLOOR, np.finfo(float).tiny)
        values = np.where(np.isfinite(values), np.maximum(values, floor), np.nan)
        if np.isnan(values).all():
            continue
        median = np.nanmedian(values, axis=1)
        line = ax.plot(curves.index, median, lw=1.4, label=_legend(key))[0]
        n_lines += 1
        if values.shape[1] > 1:
            lo, hi = np.nanpercentile(values, [10, 90], axis=1)
            ax.fill_between(curves.index, lo, hi, color=line.get_color(), alpha=0.15, lw=0)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.grid(True, which="both", alpha=0.3)
    if 0 < n_lines <= MAX_LEGEND:
        ax.legend(fontsize=8, loc="upper right")
    elif n_lines:
        ax.text(0.98, 0.98, f"{n_lines} configurations (legend omitted)", ha="right",
                va="top", transform=ax.transAxes, fontsize=8)  # fmt: skip


def _legend(key: tuple[Any, ...]) -> str:
    config = dict(zip(CONFIG, key, strict=True))
    return (
        f"{config['optimizer_label']} lr={config['lr']:g} · {config['init_label']} · "
        f"{config['device']}"
    )
