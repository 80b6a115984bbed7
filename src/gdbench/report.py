"""Turning the tables into what a person reads: a summary table and a convergence plot."""

from __future__ import annotations

import functools
import io
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np
import pandas as pd

from .engine.records import DIVERGED, ERROR, OK

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from rich.console import Group, RenderableType
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
    j = _order_index(n, level)
    if j == 0:
        return float(x[0]), float(x[-1]), False
    return float(x[j - 1]), float(x[n - j]), True


@functools.lru_cache(maxsize=1024)
def _order_index(n: int, level: float) -> int:
    """The first j with 2·P(Bin(n, ½) ≤ j) > 1 − level (n // 2 if none). Exact binomials
    for small n; scipy's vectorised cdf for large n, where big-integer binomials cost
    seconds (one configuration of 10,000 runs). Cached: a summary asks for few sizes."""
    if n <= EXACT_MAX_N:
        tail = 0.0
        for j in range(n // 2):
            tail += math.comb(n, j) / 2**n  # P(Bin(n, ½) = j)
            if 2 * tail > 1 - level:
                return j
        return n // 2
    from scipy.stats import binom

    cdf = binom.cdf(np.arange(n // 2), n, 0.5)
    return int(np.searchsorted(2 * cdf, 1 - level, side="right"))


EXACT_MAX_N = 500


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
    short: str = ""
    """The header when the table must be narrower (its meaning goes under the table)."""


SUMMARY_COLUMNS = [
    SummaryColumn("optimizer", "optimizer_label", lambda r: r.optimizer_label, "left", "opt"),
    SummaryColumn("loss", "loss_label", lambda r: r.loss_label, "left"),
    SummaryColumn("init", "init_label", lambda r: r.init_label, "left"),
    SummaryColumn("lr", "lr", lambda r: f"{r.lr:g}", "right"),
    SummaryColumn("device", "device", lambda r: r.device, "left", "dev"),
    SummaryColumn("gap", "gap_median", lambda r: _num(r.gap_median, ".1e"), "right"),
    SummaryColumn("95% CI", "gap_low", lambda r: _interval(r), "right", "CI"),
    SummaryColumn("solved", "solved", lambda r: f"{r.solved}/{r.runs}", "right", "solv"),
    SummaryColumn(
        "epochs", "epochs_to_target", lambda r: _num(r.epochs_to_target, ".0f"), "right", "ep"
    ),
    SummaryColumn("time", "seconds_to_target", lambda r: _seconds(r.seconds_to_target), "right"),
    SummaryColumn("µs/epoch", "epoch_us", lambda r: _num(r.epoch_us, ".0f"), "right", "µs/ep"),
    SummaryColumn("runs", "status", lambda r: r.status, "left"),
]


class Display(NamedTuple):
    """The summary as a person reads it: what ``render_summary`` prints, for any front end
    (terminal, Markdown, HTML)."""

    columns: list[SummaryColumn]
    """The columns shown: the configuration columns that vary, then the measurements."""
    cells: list[list[str]]
    """One row of formatted cells per configuration (numbers never shortened)."""
    caption: str
    """What every configuration shares (``loss l1 · lr 0.01 · device cpu``)."""
    footer: str
    """What the columns mean."""


def display(table: pd.DataFrame) -> Display:
    """The columns worth showing of ``summary()``'s output, formatted.

    Configuration columns that are the same in every row move into the caption (with a
    single configuration, all but its optimizer do), as does the status column when every
    configuration has the same counts; the interval goes when no configuration has two
    ok runs.
    """
    if table.empty:
        return Display([], [], "", "no runs finished")
    constant = {
        c.column
        for c in SUMMARY_COLUMNS
        if c.column in CONFIG and len(table) > 1 and table[c.column].nunique(dropna=False) == 1
    }
    if len(table) == 1:
        constant = {"loss_label", "init_label", "lr", "device"}
    hidden = set(constant)
    if (table["ok"] < 2).all():  # no interval to show for single runs
        hidden.add("gap_low")
    if len(table) > 1 and table["status"].nunique() == 1:
        hidden.add("status")
    first = _first_row(table)
    caption = [f"{c.header} {c.fmt(first)}" for c in SUMMARY_COLUMNS if c.column in constant]
    if "status" in hidden and len(table) > 1:
        caption.append(f"runs {first.status} each")
    shown = [c for c in SUMMARY_COLUMNS if c.column not in hidden]
    cells = [[c.fmt(r) for c in shown] for r in table.itertuples(index=False)]
    return Display(shown, cells, " · ".join(caption), footer(table))


def render_summary(
    table: pd.DataFrame, title: str = "gdbench", width: int | None = None
) -> RenderableType:
    """What the CLI prints of ``summary()``'s output, fitted to ``width`` columns.

    A table of the columns that vary (``display``), as wide as its values: no value is
    ever cut. When it is wider than ``width``, the headers are abbreviated (explained
    under the table) and the padding between columns narrowed; when even that does not
    fit, one block per configuration follows instead, its values on wrapped lines.
    """
    shown = display(table)
    if not shown.columns:
        from rich.text import Text

        return Text(f"{title}\n{shown.footer}")
    if width is None:
        return _captioned(_table(shown, title, short=False, padding=1), shown, short=False)
    for short, padding in ((False, 1), (True, 1), (True, 0)):
        candidate = _table(shown, title, short=short, padding=padding)
        if _natural_width(candidate) <= width:
            return _captioned(candidate, shown, short=short)
    return _blocks(shown, title, width)


def _captioned(table: Table, shown: Display, *, short: bool) -> RenderableType:
    """The table, then its caption as lines of its own: they wrap at the terminal's
    width rather than at a narrow table's."""
    from rich.console import Group
    from rich.text import Text

    abbreviated = [c for c in shown.columns if short and c.short]
    legend = " · ".join(f"{c.short}: {c.header}" for c in abbreviated)
    caption = "\n".join(filter(None, [shown.caption, legend, shown.footer]))
    return Group(table, Text(caption)) if caption else table


def _table(shown: Display, title: str, *, short: bool, padding: int) -> Table:
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    t = Table(
        title=escape(title),
        title_justify="left",
        box=box.SIMPLE_HEAD,
        padding=(0, padding),
    )
    for c in shown.columns:
        header = c.short if short and c.short else c.header
        t.add_column(header, justify=c.justify, no_wrap=True)
    for row in shown.cells:
        t.add_row(*(escape(cell) for cell in row))  # labels hold [k=v]
    return t


def _natural_width(table: Table) -> int:
    """The width ``table`` takes when nothing in it is wrapped or cut."""
    from rich.console import Console
    from rich.measure import Measurement

    console = Console(width=100_000, file=io.StringIO())
    caption, title = table.caption, table.title
    table.caption = table.title = None  # these wrap; the cells must not
    try:
        return Measurement.get(console, console.options, table).maximum
    finally:
        table.caption, table.title = caption, title


def _blocks(shown: Display, title: str, width: int) -> Group:
    """One block per configuration: its distinguishing values as a heading, then
    ``name value`` pairs packed into lines of ``width``; a pair is never split, and a line
    that goes on ends with ``·``."""
    from rich.console import Group
    from rich.text import Text

    config = [i for i, c in enumerate(shown.columns) if c.column in CONFIG]
    parts: list[RenderableType] = [Text(title, style="italic")]
    if shown.caption:
        parts.append(Text(shown.caption))
    for row in shown.cells:
        heading = [_pair(shown.columns[i], row[i]) if shown.columns[i].column == "lr" else row[i]
                   for i in config]  # fmt: skip
        parts.append(Text(""))
        parts += [Text(line, style="bold") for line in _pack(heading, width - 2)]
        pairs = [_pair(c, row[i]) for i, c in enumerate(shown.columns) if i not in config]
        parts += [Text("  " + line) for line in _pack(pairs, width - 4)]
    parts.append(Text(""))
    parts.append(Text(shown.footer, style="dim"))
    return Group(*parts)


def _pair(column: SummaryColumn, cell: str) -> str:
    return f"{column.header} {cell}"


def _pack(items: list[str], width: int, sep: str = " · ") -> list[str]:
    """``items`` joined by ``sep`` into lines of at most ``width`` + 2, each line that
    goes on ending with the separator's ``·`` (an item longer than ``width`` gets a line
    of its own, which the terminal wraps)."""
    lines: list[str] = []
    for item in items:
        if lines and len(lines[-1]) + len(sep) + len(item) <= width:
            lines[-1] += sep + item
        else:
            if lines:
                lines[-1] += sep.rstrip()
            lines.append(item)
    return lines


FORMATS = ("table", "csv", "json", "markdown")
"""What ``gdbench run --format`` prints the summary as."""


def format_summary(table: pd.DataFrame, fmt: str, title: str = "gdbench") -> str:
    """``summary()``'s output for other tools: ``csv`` and ``json`` (a list of records;
    missing values null) hold every summary column, unformatted; ``markdown`` the table a
    person reads (``display``), with its caption and footer."""
    if fmt == "csv":
        return table.to_csv(index=False)
    if fmt == "json":
        records = [{k: _plain(v) for k, v in r.items()} for r in table.to_dict("records")]
        return json.dumps(records, indent=1, ensure_ascii=False) + "\n"
    if fmt == "markdown":
        return _markdown(display(table), title)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")


def _plain(value: Any) -> Any:
    """A JSON value: numpy scalars as Python ones, NaN as null."""
    value = value.item() if isinstance(value, np.generic) else value
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _markdown(shown: Display, title: str) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    align = {"left": ":---", "right": "---:"}
    lines = [f"**{title}**", ""]
    if shown.caption:
        lines += [cell(shown.caption), ""]
    if shown.columns:
        lines.append("| " + " | ".join(cell(c.header) for c in shown.columns) + " |")
        lines.append("|" + "|".join(align[c.justify] for c in shown.columns) + "|")
        lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in shown.cells]
    lines += ["", *(f"{line}  " for line in shown.footer.splitlines())]
    return "\n".join(lines).rstrip() + "\n"


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


PANEL_LINES = 8
"""Most configurations drawn in one panel of ``convergence.png``: more get more panels."""

MAX_PANELS = 30
"""Past this many panels, panels hold more lines (twice as many, up to 4 × PANEL_LINES)."""

FLOOR = float(np.finfo(np.float32).eps)
"""Gaps below this fraction of the optimum are float32 rounding; drawn at it."""

FACETS = ["loss_label", "optimizer_label"]
"""Panels always separate losses and optimizers."""

SPLITS = ["device", "init_label"]
"""Then, while a panel would hold more than PANEL_LINES configurations, these in turn."""


class Facet(NamedTuple):
    """One panel of ``convergence.png``."""

    title: str
    """What its configurations share: ``l1 · adam`` (``· cpu``, ``· lr 1/2`` when split)."""
    loss: Any
    """Its loss label (panels of one loss share the y-axis)."""
    keys: list[tuple[Any, ...]]
    """Its configurations, as tuples of the ``CONFIG`` columns."""
    labels: list[str]
    """Each configuration's legend entry: what tells it apart from the others here."""


def facets(configs: pd.DataFrame, max_lines: int = PANEL_LINES) -> list[Facet]:
    """Group configurations (rows of the ``CONFIG`` columns, in order of appearance) into
    legible panels: one per loss × optimizer, split further by device, then initializer,
    while a panel would hold more than ``max_lines``; what still has too many (learning
    rates) is cut into consecutive runs of lr, each at most ``max_lines`` long."""
    configs = configs[CONFIG].drop_duplicates(ignore_index=True)
    by = list(FACETS)
    for column in SPLITS:
        sizes = configs.groupby(by, sort=False, dropna=False).size()
        if sizes.max() > max_lines and configs[column].nunique(dropna=False) > 1:
            by.append(column)
    panels = []
    for key, group in configs.groupby(by, sort=False, dropna=False):
        values = dict(zip(by, key, strict=True))
        group = group.sort_values("lr", kind="stable")
        n_parts = -(-len(group) // max_lines)
        size = -(-len(group) // n_parts)
        for part in range(n_parts):
            rows = group.iloc[part * size : (part + 1) * size]
            title = " · ".join(str(values[c]) for c in by)
            if n_parts > 1:
                title += f" · lr {rows['lr'].iloc[0]:g}–{rows['lr'].iloc[-1]:g}"
            keys = [tuple(r) for r in rows[CONFIG].itertuples(index=False)]
            panels.append(Facet(title, values["loss_label"], keys, _labels(rows, by)))
    return panels


def _labels(rows: pd.DataFrame, fixed: list[str]) -> list[str]:
    """Legend entries: lr, then each other column not fixed by the panel that varies in
    it (``lr=0.01 · xavier · cuda``)."""
    varying = [c for c in CONFIG if c not in fixed and c != "lr" and rows[c].nunique() > 1]
    return [
        " · ".join([f"lr={r['lr']:g}", *(str(r[c]) for c in varying)]) for _, r in rows.iterrows()
    ]


def _layout(panels: list[Facet]) -> tuple[int, int]:
    """(rows, columns): one row per loss when every loss has the same few panels."""
    per_loss = pd.Series([p.loss for p in panels]).value_counts()
    if per_loss.nunique() == 1 and per_loss.iloc[0] <= 4:
        return len(per_loss), int(per_loss.iloc[0])
    cols = min(4, len(panels))
    return -(-len(panels) // cols), cols


def plot_convergence(runs: pd.DataFrame, history: pd.DataFrame, path: Path) -> None:
    """``convergence_figure`` saved as a PNG."""
    convergence_figure(runs, history).savefig(path, format="png")


def convergence_figure(runs: pd.DataFrame, history: pd.DataFrame) -> Figure:
    """Gap to the exact optimum against epoch on a log scale: the median over the ok runs
    of each configuration, with a band from the 10th to the 90th percentile, in panels
    of at most ``PANEL_LINES`` configurations (``facets``), each with its legend. Panels
    of one loss share a y-axis scaled to those curves (diverged runs do not stretch it);
    a diverged run is an × at the top of its panel at the epoch it diverged. Gaps below
    float32 resolution (~1.2e-7 of the optimum) are drawn at it."""
    from matplotlib.figure import Figure

    max_lines = PANEL_LINES
    panels = facets(runs)
    while len(panels) > MAX_PANELS and max_lines < 4 * PANEL_LINES:
        max_lines *= 2
        panels = facets(runs, max_lines)
    ok = runs[runs["status"] == OK]
    merged = history.merge(ok[["run_id", "optimum_loss", *CONFIG]], on="run_id")
    curves = {
        key: _curves(group) for key, group in merged.groupby(CONFIG, sort=False, dropna=False)
    }
    n_rows, n_cols = _layout(panels)
    wide = max(len(p.keys) for p in panels) > PANEL_LINES
    fig = Figure(figsize=((5.6 if wide else 4.8) * n_cols, 3.9 * n_rows + 0.6), dpi=100)
    axes = fig.subplots(n_rows, n_cols, squeeze=False).ravel()
    limits: dict[Any, list[float]] = {}
    for ax, panel in zip(axes, panels, strict=False):
        lo, hi = _plot_panel(ax, panel, curves, runs)
        limits.setdefault(panel.loss, []).extend([lo, hi])
    for ax, panel in zip(axes, panels, strict=False):
        bounds = [v for v in limits[panel.loss] if np.isfinite(v)]
        if bounds:
            ax.set_ylim(min(bounds) / 2, max(bounds) * 2)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    for row in range(n_rows):
        axes[row * n_cols].set_ylabel("gap to the optimum")
    fig.suptitle(
        "gdbench: convergence (median over ok runs; band: 10–90%; ×: a run diverged there)"
    )
    fig.tight_layout()
    return fig


def _curves(group: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(epochs, median, 10–90% band or None) of one configuration's ok runs."""
    table = group.pivot(index="epoch", columns="run_id", values="gap")
    floors = group.groupby("run_id")["optimum_loss"].first().reindex(table.columns)
    values = table.to_numpy(dtype=float)
    floor = np.maximum(floors.to_numpy(dtype=float) * FLOOR, np.finfo(float).tiny)
    values = np.where(np.isfinite(values), np.maximum(values, floor), np.nan)
    epochs = table.index.to_numpy()
    if np.isnan(values).all():
        return epochs, np.full(len(epochs), np.nan), None
    with np.errstate(all="ignore"):
        median = np.nanmedian(values, axis=1)
        band = np.nanpercentile(values, [10, 90], axis=1) if values.shape[1] > 1 else None
    return epochs, median, band


def _plot_panel(
    ax: Axes,
    panel: Facet,
    curves: dict[tuple[Any, ...], tuple[np.ndarray, np.ndarray, np.ndarray | None]],
    runs: pd.DataFrame,
) -> tuple[float, float]:
    """Draw one panel; return the range of the values drawn (for the shared y-axis)."""
    lo, hi = np.inf, -np.inf
    left_out = 0
    for i, (key, label) in enumerate(zip(panel.keys, panel.labels, strict=True)):
        color = f"C{i % 10}"
        mine = runs[_matches(runs, key)]
        diverged = mine[mine["status"] == DIVERGED]
        left_out += int((~mine["status"].isin([OK, DIVERGED])).sum())
        text = label + (f" ({len(diverged)} diverged)" if len(diverged) else "")
        drawn = False
        if key in curves:
            epochs, median, band = curves[key]
            if np.isfinite(median).any():
                ax.plot(epochs, median, lw=1.4, color=color, label=text)
                drawn = True
                shown = [median] if band is None else [median, *band]
                for values in shown:
                    finite = values[np.isfinite(values)]
                    if finite.size:
                        lo, hi = min(lo, float(finite.min())), max(hi, float(finite.max()))
                if band is not None:
                    ax.fill_between(epochs, band[0], band[1], color=color, alpha=0.15, lw=0)
        if len(diverged):
            at = diverged["diverged_epoch"].to_numpy(dtype=float)
            ax.plot(at, np.full(len(at), 0.96), ls="none", marker="x", ms=6, mew=1.5,
                    color=color, transform=ax.get_xaxis_transform(), clip_on=False,
                    label=None if drawn else text)  # fmt: skip
        elif not drawn:  # no curve, no divergence: keep its place in the legend
            ax.plot([], [], color=color, label=f"{label} (no ok run)")
    ax.set_yscale("log")
    ax.minorticks_off()  # the log axis's minor ticks cost seconds to lay out, and clutter
    ax.set_xlabel("epoch")
    ax.grid(True, which="major", alpha=0.3)
    note = f" ({left_out} runs not ok, left out)" if left_out else ""
    ax.set_title(panel.title + note, fontsize=10)
    ax.legend(fontsize=7, loc="lower left")
    return lo, hi


def _matches(runs: pd.DataFrame, key: tuple[Any, ...]) -> pd.Series:
    mask = pd.Series(True, index=runs.index)
    for column, value in zip(CONFIG, key, strict=True):
        column_values = runs[column]
        mask &= column_values.isna() if value != value else column_values == value
    return mask
