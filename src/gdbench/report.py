"""Turning the tables into what a person reads: a summary table and a convergence plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

CONFIG = ["optimizer_label", "loss_label", "init_label", "lr", "device"]
"""The columns that identify a configuration; seeds vary within one."""


def summary(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration: loss (mean, std over seeds), w, b, speed, status counts."""
    if runs.empty:
        return pd.DataFrame()
    grouped = runs.groupby(CONFIG, sort=False, dropna=False)
    out = grouped.agg(
        runs=("run_id", "size"),
        loss_mean=("final_loss", "mean"),
        loss_std=("final_loss", "std"),
        w_mean=("w", "mean"),
        b_mean=("b", "mean"),
        epochs_to_1pct=("epochs_to_1pct", "median"),
        reached_1pct=("epochs_to_1pct", lambda s: int(s.notna().sum())),
        epoch_us=("epoch_us", "median"),
    )
    out["status"] = grouped["status"].agg(_status_counts)
    return out.reset_index()


def _status_counts(statuses: pd.Series) -> str:
    return ", ".join(f"{k} {v}" for k, v in statuses.value_counts().sort_index().items())


SUMMARY_COLUMNS = [
    # (header, summary column or None, how to format a row, justify)
    ("optimizer", "optimizer_label", lambda r: r.optimizer_label, "left"),
    ("loss", "loss_label", lambda r: r.loss_label, "left"),
    ("init", "init_label", lambda r: r.init_label, "left"),
    ("lr", "lr", lambda r: f"{r.lr:g}", "right"),
    ("device", "device", lambda r: r.device, "left"),
    ("final loss", None, lambda r: _mean_std(r.loss_mean, r.loss_std), "right"),
    ("w", None, lambda r: _num(r.w_mean), "right"),
    ("b", None, lambda r: _num(r.b_mean), "right"),
    ("epochs to 1%", None, lambda r: _epochs(r.epochs_to_1pct, r.reached_1pct, r.runs), "right"),
    ("µs/epoch", None, lambda r: _num(r.epoch_us, ".0f"), "right"),
    ("runs", None, lambda r: r.status, "left"),
]


def render_summary(table: pd.DataFrame, title: str = "gdbench"):
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
        if col and len(table) > 1 and table[col].nunique(dropna=False) == 1
    }
    if len(table) == 1:
        constant = {"loss_label", "init_label", "lr", "device"}
    shown = [c for c in SUMMARY_COLUMNS if c[1] not in constant]
    caption = " · ".join(
        f"{header} {fmt(_first_row(table))}"
        for header, col, fmt, _ in SUMMARY_COLUMNS
        if col in constant
    )
    t = Table(
        title=title,
        title_justify="left",
        caption=escape(caption) or None,
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


def _mean_std(mean: float, std: float) -> str:
    if not np.isfinite(mean):
        return "—"
    return f"{mean:.4f}" if not np.isfinite(std) else f"{mean:.4f} ± {std:.4f}"


def _first_row(table: pd.DataFrame):
    return next(table.itertuples(index=False))


def _epochs(median: float, reached: int, runs: int) -> str:
    if reached == 0:
        return "not reached"
    text = f"{median:.0f}"
    return text if reached == runs else f"{text} ({reached}/{runs})"


MAX_LEGEND = 12
"""More lines than this make a legend unreadable; it is left out then."""


def plot_convergence(runs: pd.DataFrame, history: pd.DataFrame, path: Path) -> None:
    """Loss against epoch on a log scale, one panel per loss (their scales differ): the
    median over seeds per configuration, with a min–max band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    merged = history.merge(runs[["run_id", *CONFIG]], on="run_id")
    losses = list(dict.fromkeys(runs["loss_label"]))
    fig, axes = plt.subplots(
        1, len(losses), figsize=(4 + 5 * len(losses), 5.5), dpi=110, squeeze=False
    )
    for ax, loss in zip(axes[0], losses, strict=True):
        _plot_panel(ax, merged[merged["loss_label"] == loss])
        ax.set_title(f"loss: {loss}")
    axes[0][0].set_ylabel("training loss (median over seeds; band: min–max)")
    fig.suptitle("gdbench: convergence")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def _plot_panel(ax, merged: pd.DataFrame) -> None:
    n_lines = 0
    for key, group in merged.groupby(CONFIG, sort=False, dropna=False):
        curves = group.pivot(index="epoch", columns="run_id", values="loss")
        values = curves.to_numpy(dtype=float)
        values = np.where(np.isfinite(values) & (values > 0), values, np.nan)
        if np.isnan(values).all():
            continue
        median = np.nanmedian(values, axis=1)
        line = ax.plot(curves.index, median, lw=1.4, label=_legend(key))[0]
        n_lines += 1
        if values.shape[1] > 1:
            lo, hi = np.nanmin(values, axis=1), np.nanmax(values, axis=1)
            ax.fill_between(curves.index, lo, hi, color=line.get_color(), alpha=0.15, lw=0)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.grid(True, which="both", alpha=0.3)
    if 0 < n_lines <= MAX_LEGEND:
        ax.legend(fontsize=8, loc="upper right")
    elif n_lines:
        ax.text(0.98, 0.98, f"{n_lines} configurations (legend omitted)", ha="right",
                va="top", transform=ax.transAxes, fontsize=8)  # fmt: skip


def _legend(key: tuple) -> str:
    optimizer, _loss, init, lr, device = key
    return f"{optimizer} lr={lr:g} · {init} · {device}"
