"""``report.html``: a results folder as one self-contained page a person opens in a browser.

Everything is inline: the style sheet, a small script that sorts the tables, and every
figure as inline SVG drawn by matplotlib (text kept as text, so the page stays small and
searchable). The page fetches nothing, so it opens offline, from an e-mail attachment or
a CI artifact alike. Its parts: the invocation and environment (``meta.json``), the
summary tables (sortable), status counts with the first error of each failing
configuration, the gap-vs-epoch curves (median and 10–90% band per configuration, one
figure per loss with one panel per optimizer), the tuning results and sensitivity
(``tuned.parquet``, the ``tune`` trials), and the performance profiles
(``profiles.parquet``). Every string that came from a user or a plugin is HTML-escaped
by the template (jinja2 with autoescape) and ``$``-escaped for matplotlib's mathtext.
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .engine.records import DIVERGED, OK
from .html_figures import (
    BAND,
    convergence_figure,
    curve_stats,
    figure_svg,
    image_uri,
    sensitivity_svg,
    thin_history,
)
from .report import CONFIG, summary

if TYPE_CHECKING:
    from .results import Results

REPORT_FILE = "report.html"
"""The page's name in the results folder."""


# ---------------------------------------------------------------- the page's pieces


@dataclass
class Cell:
    """One table cell: what is shown, and the value the table sorts by ("" sorts last)."""

    text: str
    key: str = ""


@dataclass
class Table:
    """A sortable table: headers with their sort type, and rows of cells."""

    headers: list[tuple[str, str]]
    """(header, "number" or "text")."""
    rows: list[list[Cell]]
    caption: str = ""
    id: str = ""


@dataclass
class Figure:
    """A figure: inline SVG markup (already made safe: matplotlib escapes its text) or an
    image's data URI."""

    id: str
    title: str
    caption: str = ""
    svg: str = ""
    image: str = ""


@dataclass
class Section:
    id: str
    title: str
    intro: str = ""
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    blocks: list[tuple[str, str]] = field(default_factory=list)
    """(summary, preformatted text), each shown folded."""
    figures_first: bool = False


# ---------------------------------------------------------------- entry points


def write_report(folder: str | Path, results: Results | None = None) -> Path:
    """Write ``folder/report.html`` (atomically) and return its path. ``results`` are the
    folder's tables when the caller holds them already; otherwise they are loaded."""
    from .store import atomic_write, load

    folder = Path(folder)
    if results is None:
        results = load(folder)
    page = render_report(folder, results)
    path = folder / REPORT_FILE
    atomic_write(path, lambda p: p.write_text(page, encoding="utf-8"))
    return path


def write_report_or_warn(folder: str | Path, results: Results | None = None) -> Path | None:
    """``write_report``, for the end of a sweep: the tables are saved already, so a
    failure here is a warning, never a lost sweep."""
    import warnings

    try:
        return write_report(folder, results)
    except Exception as exc:
        warnings.warn(f"report.html not written: {type(exc).__name__}: {exc}", stacklevel=2)
        return None


def render_report(folder: Path, results: Results) -> str:
    """The page for ``results`` (the tables of ``folder``), as text."""
    import jinja2

    meta = _read_json(folder / "meta.json")
    runs, history = results.runs, results.history
    counter = _Ids()
    sections = [
        _environment_section(folder, meta),
        *_summary_sections(runs, counter),
        _status_section(runs, counter),
        _convergence_section(runs, history, counter),
        *_tuning_sections(folder, runs, counter),
        *_profiles_sections(folder, counter),
    ]
    template_text = (
        resources.files("gdbench").joinpath("report.html.j2").read_text(encoding="utf-8")
    )
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = env.from_string(template_text)
    return template.render(
        title=f"gdbench report · {folder.name}",
        folder=str(folder),
        headline=_headline(runs, meta),
        sections=sections,
    )


class _Ids:
    """Unique element ids within the page (figures' own SVG ids are prefixed with them)."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, stem: str) -> str:
        self.n += 1
        return f"{stem}-{self.n}"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _headline(runs: pd.DataFrame, meta: dict[str, Any]) -> str:
    n = len(runs)
    configs = runs.groupby(CONFIG, dropna=False).ngroups if n else 0
    planned = meta.get("n_runs_planned")
    state = "complete" if meta.get("complete") else "incomplete"
    if meta.get("interrupted"):
        state = f"interrupted ({meta['interrupted']})"
    of = f" of {planned} planned" if planned is not None and planned != n else ""
    return f"{n} runs{of} · {configs} configurations · {state}"


# ---------------------------------------------------------------- invocation and environment


def _environment_section(folder: Path, meta: dict[str, Any]) -> Section:
    invocation = meta.get("invocation")
    command = (
        shlex.join(str(a) for a in invocation)
        if isinstance(invocation, list)
        else "gdbench.run(…) from Python (no command line recorded)"
    )
    rows: list[tuple[str, Any]] = [
        ("command", command),
        ("working directory", meta.get("cwd")),
        ("started", meta.get("started")),
        ("finished", meta.get("finished")),
        ("runs planned / saved", f"{meta.get('n_runs_planned')} / {meta.get('n_runs_saved')}"),
        ("target (relative gap)", meta.get("target")),
        ("divergence factor", meta.get("diverge_factor")),
        ("data seeds", meta.get("data_seeds")),
        ("task", meta.get("task")),
        ("engine", meta.get("engine")),
        ("torch.compile", meta.get("compile")),
        ("batches", meta.get("batches")),
        ("executor", meta.get("executor")),
        ("versions", meta.get("versions")),
        ("devices", meta.get("devices")),
        ("machine", meta.get("machine")),
    ]
    for i, resume in enumerate(meta.get("resumes") or [], 1):
        rows.append((f"resume {i}", resume))
    table = Table(
        [("", "text"), ("", "text")],
        [[Cell(k), Cell(_plain(v))] for k, v in rows if v is not None],
        id="environment-table",
    )
    plugins = Table(
        [("plugin", "text"), ("package", "text"), ("version", "text"), ("state", "text")],
        [
            [
                Cell(str(p.get("name"))),
                Cell(str(p.get("dist") or "")),
                Cell(str(p.get("version") or "")),
                Cell(
                    f"failed: {p['error']}"
                    if p.get("error")
                    else f"disabled: {p['disabled']}"
                    if p.get("disabled")
                    else "loaded"
                ),
            ]
            for p in meta.get("plugins") or []
            if isinstance(p, dict)
        ],
        caption="plugins",
        id="plugins",
    )
    section = Section("environment", "Invocation and environment", tables=[table])
    if plugins.rows:
        section.tables.append(plugins)
    if not meta:
        section.notes.append(f"{folder.name} holds no readable meta.json.")
    sweep = folder / "sweep.toml"
    if sweep.is_file():
        section.blocks.append(("sweep.toml (gdbench run --config reruns it)", sweep.read_text()))
    return section


def _plain(value: Any) -> str:
    """A meta.json value on one line: mappings as ``k: v · k: v``, lists comma-separated."""
    if isinstance(value, dict):
        return " · ".join(f"{k}: {_plain(v)}" for k, v in value.items() if v is not None)
    if isinstance(value, list):
        return ", ".join(_plain(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# ---------------------------------------------------------------- summary tables


def _phases(runs: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(title, runs) per phase: held-out evaluation and tuning trials apart, when the runs
    come from a tuning study (a ``phase`` column), else one block."""
    phases = sorted(set(runs["phase"].dropna())) if "phase" in runs.columns else []
    if len(phases) <= 1:
        return [("", runs)]
    names = {"eval": "held-out evaluation", "tune": "tuning trials", "run": "runs"}
    phases.sort(key=lambda p: (p != "eval", p != "tune", p))
    return [(names.get(p, f"phase {p}"), runs[runs["phase"] == p]) for p in phases]


def _summary_sections(runs: pd.DataFrame, ids: Callable[[str], str]) -> list[Section]:
    section = Section(
        "summary",
        "Summary",
        intro="One row per configuration over its data × init seeds; click a column's "
        "header to sort by it (again to reverse).",
    )
    if runs.empty:
        section.notes.append("No run was saved.")
        return [section]
    for title, block in _phases(runs):
        section.tables.append(summary_table(block, ids("summary"), title))
    target = runs["target"].iloc[0]
    section.notes.append(
        "gap: final loss − exact optimum of the run's own data, median over ok runs; "
        "95% CI of that median from order statistics (* under 6 runs: min–max); "
        f"solved: relative gap ≤ {_g(target)} reached and kept; epochs, time: to target, "
        "median over solved runs."
    )
    return [section]


def summary_table(runs: pd.DataFrame, table_id: str = "summary", title: str = "") -> Table:
    """The summary of ``runs`` as a sortable table; configuration columns that are the
    same in every row move into the caption."""
    table = summary(runs)
    config_columns = [
        ("optimizer", "optimizer_label", "text"),
        ("loss", "loss_label", "text"),
        ("init", "init_label", "text"),
        ("lr", "lr", "number"),
        ("device", "device", "text"),
    ]
    constant = [
        (header, col, kind)
        for header, col, kind in config_columns
        if len(table) > 1 and table[col].nunique(dropna=False) == 1
    ]
    shown = [c for c in config_columns if c not in constant]
    first = table.iloc[0]
    caption = " · ".join(f"{h}: {_config_value(col, first[col])}" for h, col, _ in constant)
    headers = [(h, kind) for h, _, kind in shown] + [
        ("gap", "number"),
        ("95% CI", "number"),
        ("solved", "number"),
        ("epochs", "number"),
        ("time", "number"),
        ("µs/epoch", "number"),
        ("runs", "text"),
    ]
    rows = []
    for r in table.to_dict("records"):
        cells = [Cell(_config_value(col, r[col]), _key(r[col])) for _, col, _ in shown]
        cells += [
            Cell(_num(r["gap_median"], ".2e"), _key(r["gap_median"])),
            Cell(_interval(r), _key(r["gap_low"])),
            Cell(f"{r['solved']}/{r['runs']}", _key(r["solved"] / max(r["runs"], 1))),
            Cell(_num(r["epochs_to_target"], ".0f"), _key(r["epochs_to_target"])),
            Cell(_seconds(r["seconds_to_target"]), _key(r["seconds_to_target"])),
            Cell(_num(r["epoch_us"], ".0f"), _key(r["epoch_us"])),
            Cell(str(r["status"]), str(r["status"])),
        ]
        rows.append(cells)
    caption = " — ".join(filter(None, [title, caption]))
    return Table(headers, rows, caption=caption, id=table_id)


def _config_value(column: str, value: Any) -> str:
    return _g(value) if column == "lr" else str(value)


def _g(value: Any) -> str:
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return str(value)


def _key(value: Any) -> str:
    """The sort key of a value: a number as text ("" for missing or NaN), else the text."""
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if isinstance(value, (int, float, np.integer, np.floating)):
        return repr(float(value)) if math.isfinite(float(value)) else ""
    return str(value)


def _num(value: Any, fmt: str) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "—"
    return format(v, fmt) if math.isfinite(v) else "—"


def _interval(r: Mapping[Any, Any]) -> str:
    if not np.isfinite(r["gap_low"]):
        return "—"
    mark = "" if r["gap_interval_exact"] else "*"
    return f"{r['gap_low']:.1e}–{r['gap_high']:.1e}{mark}"


def _seconds(value: float) -> str:
    if not np.isfinite(value):
        return "—"
    return f"{value * 1e3:.0f} ms" if value < 1 else f"{value:.2f} s"


# ---------------------------------------------------------------- status and errors


def first_errors(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration with a run that did not end ``ok``: its status counts,
    and the first error (the earliest ``error`` run's, as ``failures.failures`` reports it
    on the command line) or, for divergence only, where it diverged."""
    from .failures import first_error
    from .report import status_counts

    columns = [*CONFIG, "runs", "status", "first_error", "run_id"]
    if runs.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for key, group in runs.groupby(CONFIG, sort=False, dropna=False):
        bad = group[group["status"] != OK].sort_values("run_id")
        if bad.empty:
            continue
        first = first_error(bad)  # the one `gdbench run` prints
        if first is None:  # no run failed: a message of another kind (the optimum's)
            errors = bad[bad["error"].fillna("").astype(str) != ""]
            first = errors.iloc[0] if len(errors) else None
        if first is not None:
            what = str(first["error"])
        else:
            first = bad.iloc[0]
            what = _divergence(bad)
        rows.append(
            {
                **dict(zip(CONFIG, key, strict=True)),
                "runs": len(group),
                "status": status_counts(group["status"]),
                "first_error": what,
                "run_id": int(first["run_id"]),
            }
        )
    return pd.DataFrame(rows, columns=columns)


def _divergence(bad: pd.DataFrame) -> str:
    diverged = bad[bad["status"] == DIVERGED]
    if diverged.empty:
        return ", ".join(sorted(set(bad["status"].astype(str))))
    epochs = pd.to_numeric(diverged["diverged_epoch"], errors="coerce").dropna()
    if epochs.empty:
        return "diverged"
    low, high = int(epochs.min()), int(epochs.max())
    return f"diverged at epoch {low}" if low == high else f"diverged at epochs {low}–{high}"


def _status_section(runs: pd.DataFrame, ids: Callable[[str], str]) -> Section:
    from .report import status_counts

    section = Section("status", "Status")
    if runs.empty:
        section.notes.append("No run was saved.")
        return section
    section.intro = f"All runs: {status_counts(runs['status'])}."
    failing = first_errors(runs)
    if failing.empty:
        section.notes.append("Every run ended ok.")
        return section
    varying = [c for c in CONFIG if failing[c].nunique(dropna=False) > 1 or len(failing) == 1]
    headers = [(_HEADERS[c], "number" if c == "lr" else "text") for c in varying]
    headers += [("runs", "text"), ("first error (or divergence)", "text"), ("run", "number")]
    rows = [
        [
            *(Cell(_config_value(c, r[c]), _key(r[c])) for c in varying),
            Cell(str(r["status"]), str(r["status"])),
            Cell(str(r["first_error"]), str(r["first_error"])),
            Cell(str(r["run_id"]), _key(r["run_id"])),
        ]
        for r in failing.to_dict("records")
    ]
    constant = [c for c in CONFIG if c not in varying]
    caption = " · ".join(f"{_HEADERS[c]}: {_config_value(c, failing[c].iloc[0])}" for c in constant)
    section.tables.append(
        Table(
            headers,
            rows,
            caption=f"{len(failing)} configurations with runs not ok"
            + (f" — {caption}" if caption else ""),
            id=ids("failures"),
        )
    )
    return section


_HEADERS = {
    "optimizer_label": "optimizer",
    "loss_label": "loss",
    "init_label": "init",
    "lr": "lr",
    "device": "device",
}


def _convergence_section(
    runs: pd.DataFrame, history: pd.DataFrame, ids: Callable[[str], str]
) -> Section:
    section = Section(
        "convergence",
        "Convergence",
        intro=f"Gap to the exact optimum against epoch (log scale): the median over each "
        f"configuration's ok runs, with a band from the {BAND[0]}th to the {BAND[1]}th "
        "percentile; one figure per loss, one panel per optimizer. Gaps below float32 "
        "resolution (~1.2e-7 of the optimum) are drawn at it; × marks where a run "
        "diverged.",
    )
    if "phase" in runs.columns and (runs["phase"] == "eval").any():
        runs = runs[runs["phase"] == "eval"]
        section.intro += " Held-out evaluation runs only."
    if runs.empty or history.empty:
        section.notes.append("No per-epoch history was kept (--history none), or no run.")
        return section
    history = thin_history(history[history["run_id"].isin(runs["run_id"])])
    ok = runs[runs["status"] == OK]
    merged = history.merge(ok[["run_id", "optimum_loss", *CONFIG]], on="run_id")
    stats = curve_stats(merged)
    for loss in dict.fromkeys(runs["loss_label"]):
        fig_id = ids("convergence")
        svg = convergence_figure(
            runs[runs["loss_label"] == loss], stats[stats["loss_label"] == loss], fig_id
        )
        section.figures.append(Figure(fig_id, f"loss: {loss}", svg=svg))
    return section


def _tuning_sections(folder: Path, runs: pd.DataFrame, ids: Callable[[str], str]) -> list[Section]:
    tuned_path = folder / "tuned.parquet"
    trials = runs[runs["phase"] == "tune"] if "phase" in runs.columns else runs.iloc[:0]
    if not tuned_path.exists() and trials.empty:
        return []
    section = Section(
        "tuning",
        "Tuning",
        figures_first=False,
        intro="Per study and optimizer: the chosen hyper-parameters and their held-out "
        "statistics (tuned.parquet).",
    )
    if tuned_path.exists():
        try:
            tuned = pd.read_parquet(tuned_path)
            section.tables.append(frame_table(tuned, ids("tuned"), "tuned.parquet"))
        except Exception as exc:  # a file from another version: say so, keep the page
            section.notes.append(f"tuned.parquet could not be read: {exc}")
    picture = folder / "sensitivity.png"
    if picture.exists():
        section.figures.append(
            Figure(ids("sensitivity"), "Sensitivity (sensitivity.png)", image=image_uri(picture))
        )
    elif not trials.empty:
        fig_id = ids("sensitivity")
        section.figures.append(
            Figure(
                fig_id,
                "Sensitivity to the learning rate",
                svg=sensitivity_svg(trials, fig_id),
                caption="Every tuning trial's final relative gap against its lr (dots), "
                "the median per lr (line); × at the top: trials not ok.",
            )
        )
    return [section]


def frame_table(frame: pd.DataFrame, table_id: str, caption: str = "") -> Table:
    """Any data frame as a sortable table: numbers to 4 significant digits; columns with
    one value in every row (of several rows) move into the caption."""
    constant = [c for c in frame.columns if len(frame) > 1 and frame[c].astype(str).nunique() == 1]
    shown = [c for c in frame.columns if c not in constant]
    headers = [
        (str(c), "number" if pd.api.types.is_numeric_dtype(frame[c]) else "text") for c in shown
    ]
    rows = [[_frame_cell(v) for v in record] for record in frame[shown].itertuples(index=False)]
    same = " · ".join(f"{c}: {_frame_cell(frame[c].iloc[0]).text}" for c in constant)
    return Table(headers, rows, caption=" — ".join(filter(None, [caption, same])), id=table_id)


def _frame_cell(value: Any) -> Cell:
    if isinstance(value, (float, np.floating)):
        return Cell(_num(value, ".4g"), _key(value))
    return Cell(_plain(value) if value is not None else "", _key(value))


# ---------------------------------------------------------------- performance profiles


def _profiles_sections(folder: Path, ids: Callable[[str], str]) -> list[Section]:
    path, picture = folder / "profiles.parquet", folder / "profiles.png"
    if not path.exists() and not picture.exists():
        return []
    section = Section(
        "profiles",
        "Performance profiles",
        figures_first=True,
        intro="Per device and measure of time to target: the fraction of workloads on "
        "which each configuration reaches the target within τ times the fastest "
        "configuration's time; the score is the area under that curve for τ in [1, 4], "
        "divided by 3.",
    )
    try:
        from .profiles import plot_profiles, scores

        profiles = pd.read_parquet(path)
        fig_id = ids("profiles")
        section.figures.append(
            Figure(
                fig_id, "ρ(τ) per configuration", svg=figure_svg(plot_profiles(profiles), fig_id)
            )
        )
        section.tables.append(frame_table(scores(profiles), ids("scores"), "scores"))
    except Exception as exc:  # the file from another version, or no profiles module
        if picture.exists():
            section.figures.append(
                Figure(ids("profiles"), "Performance profiles", image=image_uri(picture))
            )
        else:
            section.notes.append(f"profiles.parquet could not be drawn: {exc}")
    return [section]
