"""``sensitivity.png``: how forgiving each optimizer is — every tuning trial's final gap
and epochs to target against each tuned hyper-parameter."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


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
