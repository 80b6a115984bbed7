"""The figures of ``report.html``, drawn by matplotlib as inline SVG: the gap-vs-epoch
curves (median and band per configuration, diverged runs marked) and the tuning trials'
sensitivity; helpers to embed any figure or image in the page."""

from __future__ import annotations

import base64
import io
import math
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from .engine.records import DIVERGED, OK
from .report import CONFIG, FLOOR

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure as MplFigure

MAX_CURVE_POINTS = 160
"""Epochs drawn per curve at most (evenly spaced, first and last included): the page
stays a few MB for a 1,350-run sweep, and a curve at 160 points looks no different."""
PANEL_COLUMNS = 3
"""Panels per row in a faceted figure."""
BAND = (10, 90)
"""Percentiles of the band drawn around each median curve."""
STYLES = ["-", "--", ":", "-."]
"""Line styles that tell initializers apart within a panel."""


@contextmanager
def _svg_style() -> Iterator[None]:
    import matplotlib

    with matplotlib.rc_context(
        {"svg.fonttype": "none", "svg.hashsalt": "gdbench", "path.simplify": True}
    ):
        yield


def figure_svg(fig: MplFigure, prefix: str) -> str:
    """``fig`` as an inline ``<svg>`` element: no XML prolog, no metadata, and every id
    prefixed (several figures share one page, and matplotlib's ids may repeat)."""
    buffer = io.StringIO()
    with _svg_style():
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    svg = re.sub(r'\bid="([^"]+)"', rf'id="{prefix}-\1"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", rf"url(#{prefix}-\1)", svg)
    svg = re.sub(r'href="#([^"]+)"', rf'href="#{prefix}-\1"', svg)
    return svg.replace("<svg ", '<svg role="img" ', 1)


def image_uri(path: Path) -> str:
    """An image file as a ``data:`` URI."""
    kind = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg"}
    mime = kind.get(path.suffix.lower(), "application/octet-stream")
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _text(value: Any) -> str:
    """A label for matplotlib: ``$`` would start mathtext."""
    return str(value).replace("$", r"\$")


def _new_figure(
    n_panels: int, legend_rows: int = 0, width: float = 4.6, height: float = 3.3, sharey=False
) -> Any:
    """A figure of ``n_panels`` panels, PANEL_COLUMNS to a row, with room below for a
    legend of ``legend_rows`` rows. Margins are fixed (in inches) rather than computed
    by tight_layout, which costs seconds on a large sweep."""
    from matplotlib.figure import Figure as MplFigure

    cols = min(PANEL_COLUMNS, max(n_panels, 1))
    rows = math.ceil(max(n_panels, 1) / cols)
    bottom = 0.55 + 0.25 * legend_rows + (0.15 if legend_rows else 0)
    top = 0.6  # room for a two-line panel title
    fig_w, fig_h = width * cols + 0.6, height * rows + bottom + top
    fig = MplFigure(figsize=(fig_w, fig_h), dpi=100)
    fig.subplots_adjust(left=0.85 / fig_w, right=1 - 0.2 / fig_w, bottom=bottom / fig_h,
                        top=1 - top / fig_h, wspace=0.12 if sharey else 0.25,
                        hspace=1.0 / height)  # fmt: skip
    axes = fig.subplots(rows, cols, squeeze=False, sharey=sharey).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def thin_history(history: pd.DataFrame) -> pd.DataFrame:
    """At most MAX_CURVE_POINTS epochs, evenly spaced, the first and last included."""
    epochs = np.sort(history["epoch"].unique())
    if len(epochs) <= MAX_CURVE_POINTS:
        return history
    keep = epochs[np.unique(np.linspace(0, len(epochs) - 1, MAX_CURVE_POINTS).round().astype(int))]
    return history[history["epoch"].isin(keep)]


def convergence_figure(runs: pd.DataFrame, stats: pd.DataFrame, prefix: str) -> str:
    from matplotlib.lines import Line2D

    devices = list(dict.fromkeys(runs["device"]))
    panels = [
        (opt, dev) for opt in dict.fromkeys(runs["optimizer_label"]) for dev in devices
        if ((runs["optimizer_label"] == opt) & (runs["device"] == dev)).any()
    ]  # fmt: skip
    lrs = sorted(set(runs["lr"]))
    drawn = stats if len(stats) else runs  # initializers with a curve to tell apart
    inits = list(dict.fromkeys(drawn["init_label"]))
    colors = _lr_colors(lrs)
    n_handles = len(lrs) + (len(inits) if len(inits) > 1 else 0)
    fig, axes = _new_figure(len(panels), legend_rows=math.ceil(n_handles / 8), sharey=True)
    for ax, (opt, dev) in zip(axes, panels, strict=True):
        in_panel = (runs["optimizer_label"] == opt) & (runs["device"] == dev)
        curves = stats[(stats["optimizer_label"] == opt) & (stats["device"] == dev)]
        _plot_curves(ax, curves, colors, inits)
        _mark_divergence(ax, runs[in_panel & (runs["status"] == DIVERGED)], colors)
        not_ok = int((runs[in_panel]["status"] != OK).sum())
        title = _text(opt) + (f" · {_text(dev)}" if len(devices) > 1 else "")
        if not_ok:
            title += f"\n({not_ok} of {int(in_panel.sum())} runs not ok, left out)"
        ax.set_title(title, fontsize=10)
    for i, ax in enumerate(axes):
        ax.set_xlabel("epoch")
        if i % PANEL_COLUMNS == 0:
            ax.set_ylabel("gap to the exact optimum")
    handles = [Line2D([], [], color=colors[lr], lw=2, label=f"lr={lr:g}") for lr in lrs]
    if len(inits) > 1:
        handles += [
            Line2D([], [], color="0.3", ls=STYLES[i % len(STYLES)], label=_text(init))
            for i, init in enumerate(inits)
        ]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 8), fontsize=8,
               frameon=False, bbox_to_anchor=(0.5, 0.0))  # fmt: skip
    return figure_svg(fig, prefix)


def _lr_colors(lrs: Sequence[float]) -> dict[float, Any]:
    """A colour per learning rate: distinct colours for up to ten, else a colour map in
    order of lr."""
    import matplotlib

    if len(lrs) <= 10:
        return {lr: f"C{i}" for i, lr in enumerate(lrs)}
    cmap = matplotlib.colormaps["viridis"]
    return {lr: cmap(i / (len(lrs) - 1)) for i, lr in enumerate(lrs)}


def curve_stats(merged: pd.DataFrame) -> pd.DataFrame:
    """Per configuration and epoch: the median gap and the band's percentiles over the
    configuration's runs (gaps below float32 resolution of the optimum raised to it)."""
    if merged.empty:  # no ok run, or none with history
        return pd.DataFrame(columns=[*CONFIG, "epoch", "low", "median", "high", "n"])
    floor = np.maximum(merged["optimum_loss"].to_numpy(dtype=float) * FLOOR, np.finfo(float).tiny)
    gap = merged["gap"].to_numpy(dtype=float)
    gap = np.where(np.isfinite(gap), np.maximum(gap, floor), np.nan)
    frame = merged[[*CONFIG, "epoch"]].assign(gap=gap)
    grouped = frame.groupby([*CONFIG, "epoch"], sort=False, dropna=False)["gap"]
    stats = grouped.quantile([BAND[0] / 100, 0.5, BAND[1] / 100]).unstack()
    stats.columns = ["low", "median", "high"]
    return stats.assign(n=grouped.count()).reset_index()


def _plot_curves(ax: Axes, stats: pd.DataFrame, colors: dict[float, Any], inits: list) -> None:
    drawn = False
    for key, group in stats.groupby(["init_label", "lr"], sort=False, dropna=False):
        init, lr = cast(tuple[Any, float], key)
        group = group.sort_values("epoch")
        if group["median"].isna().all():
            continue
        style = STYLES[inits.index(init) % len(STYLES)] if init in inits else "-"
        epoch = group["epoch"].to_numpy()
        ax.plot(epoch, group["median"].to_numpy(), lw=1.3, color=colors[lr], ls=style)
        if (group["n"] > 1).any():
            ax.fill_between(epoch, group["low"].to_numpy(), group["high"].to_numpy(),
                            color=colors[lr], alpha=0.13, lw=0)  # fmt: skip
        drawn = True
    if drawn:
        ax.set_yscale("log")
    else:
        ax.text(0.5, 0.5, "no ok run", ha="center", va="center", transform=ax.transAxes)
    ax.grid(True, which="major", alpha=0.3)


def _mark_divergence(ax: Axes, diverged: pd.DataFrame, colors: dict[float, Any]) -> None:
    """An × at the top of the panel at each diverged run's divergence epoch."""
    epochs = pd.to_numeric(diverged["diverged_epoch"], errors="coerce")
    keep = epochs.notna()
    if not keep.any():
        return
    ax.scatter(
        epochs[keep],
        np.full(int(keep.sum()), 0.97),
        transform=ax.get_xaxis_transform(),
        marker="x",
        s=18,
        c=[colors.get(lr, "k") for lr in diverged.loc[keep, "lr"]],
        clip_on=False,
    )


# ---------------------------------------------------------------- tuning


def sensitivity_svg(trials: pd.DataFrame, prefix: str) -> str:
    losses = list(dict.fromkeys(trials["loss_label"]))
    fig, axes = _new_figure(len(losses))
    optimizers = list(dict.fromkeys(trials["optimizer_label"]))
    for ax, loss in zip(axes, losses, strict=True):
        block = trials[trials["loss_label"] == loss]
        for i, opt in enumerate(optimizers):
            mine = block[block["optimizer_label"] == opt]
            if mine.empty:
                continue
            ok = mine[(mine["status"] == OK) & np.isfinite(mine["rel_gap"].astype(float))]
            color = f"C{i % 10}"
            rel = np.maximum(ok["rel_gap"].astype(float), 1e-16)
            ax.scatter(ok["lr"], rel, s=8, alpha=0.35, color=color)
            medians = ok.assign(rel=rel).groupby("lr")["rel"].median()
            ax.plot(medians.index, medians.to_numpy(), color=color, lw=1.3, label=_text(opt))
            bad = mine[mine["status"] != OK]
            if len(bad):
                ax.scatter(bad["lr"], np.full(len(bad), 0.97), marker="x", s=18, color=color,
                           transform=ax.get_xaxis_transform(), clip_on=False)  # fmt: skip
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"loss: {_text(loss)}", fontsize=10)
        ax.set_xlabel("lr")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8)
    for i, ax in enumerate(axes):
        if i % PANEL_COLUMNS == 0:
            ax.set_ylabel("final relative gap")
    return figure_svg(fig, prefix)
